"""The congestion index: DB11/T 785 bands, VKT weighting, peak-hour change."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.brain.congestion import (
    IndexHistory,
    RoadReading,
    area_index,
    indices_by_area,
    level,
    peak_change,
    road_index,
)


@pytest.mark.parametrize(
    ("speed", "expected_level"),
    [(50, "smooth"), (35, "basicallySmooth"), (25, "light"), (17, "moderate"), (5, "severe")],
)
def test_road_bands_follow_the_speed_ratio(speed: float, expected_level: str) -> None:
    assert level(road_index(speed, 50)) == expected_level


def test_free_flow_is_zero_and_standstill_is_ten() -> None:
    assert road_index(60, 50) == 0.0
    assert road_index(0, 50) == 10.0
    assert road_index(35, 50) == 2.0  # ratio 0.70: the smooth / basically smooth edge


@given(st.floats(0, 200), st.floats(0, 200), st.floats(1, 150))
def test_the_index_is_bounded_and_falls_as_speed_rises(a: float, b: float, free: float) -> None:
    low, high = sorted((a, b))
    assert 0 <= road_index(high, free) <= road_index(low, free) <= 10


def test_area_index_is_weighted_by_vehicle_kilometres() -> None:
    busy_jam = RoadReading("a", 5, 50, vehicle_km=90)
    quiet_free = RoadReading("b", 50, 50, vehicle_km=10)
    value = area_index([busy_jam, quiet_free])
    assert value == pytest.approx(0.9 * busy_jam.index)
    assert area_index([RoadReading("c", 5, 50, vehicle_km=0)]) is None


def test_indices_per_area_and_city() -> None:
    readings = [RoadReading("a", 10, 50, 5, "north"), RoadReading("b", 50, 50, 5, "south")]
    out = indices_by_area(readings)
    assert set(out) == {"north", "south", "city"}
    assert out["south"] < out["city"] < out["north"]


def test_peak_hour_change_is_reported_from_history() -> None:
    before, after = IndexHistory(), IndexHistory()
    for minute in range(180):
        t = minute * 60.0
        peak = 60 * 60 <= t < 120 * 60
        before.add(t, {"city": 7.0 if peak else 2.0})
        after.add(t, {"city": 5.04 if peak else 2.0})
    assert before.peak("city") == (3600.0, 7.0)
    assert peak_change(before, after) == pytest.approx(-0.28)


def test_level_refuses_out_of_range() -> None:
    with pytest.raises(ValueError, match="0-10"):
        level(11)
