"""A grant's attributes and area cut a layer's rows (web.visibility.cut)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cityhub.web.snapshot import BY_TYPE
from cityhub.web.visibility import FULL, LayerView, cut

METERS = BY_TYPE["EnergyMeter"]
ROADS = BY_TYPE["RoadSegment"]
ROWS = {"m1": (121.47, 31.23, "Building 1", 120.0), "m2": (121.50, 31.30, "Building 2", 80.0)}


def test_a_full_view_keeps_every_row_and_column() -> None:
    assert cut(METERS, FULL, ROWS) == ROWS


def test_a_grant_of_some_attributes_blanks_the_others_and_the_location() -> None:
    view = LayerView(columns=frozenset({"power"}))
    assert cut(METERS, view, ROWS) == {"m1": (None, None, None, 120.0),
                                       "m2": (None, None, None, 80.0)}
    located = LayerView(columns=frozenset({"power", "geometry"}))
    assert cut(METERS, located, ROWS)["m1"] == (121.47, 31.23, None, 120.0)


def test_a_grant_for_an_area_drops_the_rows_outside_it() -> None:
    view = LayerView(area=(121.40, 31.20, 121.48, 31.25))
    assert set(cut(METERS, view, ROWS)) == {"m1"}
    road = {"r": ([121.30, 31.10, 121.45, 31.22], None, "Road", "smooth", 1.0, 40.0)}
    assert cut(ROADS, view, road) == road  # one of its points lies inside
    assert cut(ROADS, LayerView(area=(0.0, 0.0, 1.0, 1.0)), road) == {}


@given(st.floats(-180, 180), st.floats(-90, 90), st.floats(0, 10), st.floats(0, 10))
def test_a_row_is_kept_exactly_when_its_point_lies_in_the_area(x: float, y: float,
                                                               w: float, h: float) -> None:
    area = (x - w, y - h, x + w, y + h)
    rows = {"in": (x, y, "a", 1.0), "out": (x + w + 1, y, "b", 2.0)}
    assert set(cut(METERS, LayerView(area=area), rows)) == {"in"}
