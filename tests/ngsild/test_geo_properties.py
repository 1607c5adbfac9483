"""Properties of geo-queries checked with hypothesis: prefilter boxes never lose a match, the batch
path agrees with the one-by-one path, and no input makes the parsers raise anything but the
NGSI-LD errors."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.ngsild.errors import BadRequestData, InvalidRequest
from cityhub.ngsild.geojson import (
    GEOMETRY_TYPES,
    bboxes_intersect,
    geometry_bbox,
    validate_geometry,
)
from cityhub.ngsild.geoquery import (
    EARTH_RADIUS_M,
    GeoQuery,
    geoquery_from_json,
    parse_geoquery,
)

lons = st.floats(-180, 180)
lats = st.floats(-90, 90)
bearings = st.floats(0, 360)


def destination(lon: float, lat: float, bearing: float, metres: float) -> tuple[float, float]:
    """The point `metres` from (lon, lat) along `bearing` degrees, on the sphere."""
    delta = metres / EARTH_RADIUS_M
    phi, theta = math.radians(lat), math.radians(bearing)
    phi2 = math.asin(
        max(
            -1.0,
            min(
                1.0,
                math.sin(phi) * math.cos(delta) + math.cos(phi) * math.sin(delta) * math.cos(theta),
            ),
        )
    )
    lam = math.radians(lon) + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi),
        math.cos(delta) - math.sin(phi) * math.sin(phi2),
    )
    lon2 = (math.degrees(lam) + 540.0) % 360.0 - 180.0
    return max(-180.0, min(180.0, lon2)), max(-90.0, min(90.0, math.degrees(phi2)))


def small_box(lon: float, lat: float, width: float, height: float) -> dict[str, Any]:
    x0, y0 = min(lon, 180 - width), min(lat, 90 - height)
    x1, y1 = x0 + width, y0 + height
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


@st.composite
def geometries_around(draw: st.DrawFn, lon: float, lat: float, reach: float) -> dict[str, Any]:
    """A Point, LineString or Polygon somewhere within about `reach` metres of (lon, lat)."""
    x, y = destination(lon, lat, draw(bearings), draw(st.floats(0, reach)))
    kind = draw(st.sampled_from(["Point", "Point", "LineString", "Polygon"]))
    if kind == "Point":
        return {"type": "Point", "coordinates": [x, y]}
    size = draw(st.floats(1e-4, 0.5))
    if kind == "LineString":
        x2, y2 = destination(x, y, draw(bearings), size * 100_000)
        if (x2, y2) == (x, y):
            x2 = x + (size if x < 0 else -size)
        return {"type": "LineString", "coordinates": [[x, y], [x2, y2]]}
    return small_box(x, y, size, size)


@st.composite
def near_cases(draw: st.DrawFn) -> tuple[GeoQuery, dict[str, Any]]:
    lon, lat = draw(lons), draw(lats)
    distance = draw(st.floats(1, 3_000_000))
    reference = draw(geometries_around(lon, lat, 0))
    query = GeoQuery("near", reference["type"], reference["coordinates"], max_distance=distance)
    target = draw(geometries_around(lon, lat, distance * 1.3 + 200_000))
    return query, target


@st.composite
def area_cases(draw: st.DrawFn) -> tuple[GeoQuery, dict[str, Any]]:
    lon, lat = draw(lons), draw(lats)
    relation = draw(st.sampled_from(["within", "intersects", "contains", "overlaps", "equals"]))
    reference = draw(geometries_around(lon, lat, 0))
    query = GeoQuery(relation, reference["type"], reference["coordinates"])
    target = draw(st.one_of(st.just(reference), geometries_around(lon, lat, 80_000)))
    return query, target


@settings(max_examples=400, deadline=None)
@given(st.one_of(near_cases(), area_cases()))
def test_every_match_intersects_the_prefilter_box(case: tuple[GeoQuery, dict[str, Any]]) -> None:
    query, target = case
    box = query.bbox()
    assert box is not None
    assert -180 <= box[0] <= box[2] <= 180
    assert -90 <= box[1] <= box[3] <= 90
    if query.matches(target):
        assert bboxes_intersect(geometry_bbox(target), box)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(near_cases(), area_cases()),
    st.lists(st.tuples(lons, lats), max_size=20),
    st.sampled_from(["near;minDistance==100000", "disjoint", None]),
)
def test_batch_agrees_with_one_by_one(
    case: tuple[GeoQuery, dict[str, Any]], points: list[tuple[float, float]], georel: str | None
) -> None:
    query, target = case
    if georel is not None:
        query = GeoQuery(
            "near" if georel.startswith("near") else georel,
            query.geometry,
            query.coordinates,
            min_distance=100_000 if georel.startswith("near") else None,
        )
    candidates: list[object] = [{"type": "Point", "coordinates": [x, y]} for x, y in points]
    candidates += [target, None, {"type": "Point", "coordinates": [True, 1]}]
    assert query.matches_many(candidates) == [query.matches(c) for c in candidates]


def test_boxes_are_absent_only_where_far_geometries_match() -> None:
    square = [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]
    assert GeoQuery("disjoint", "Polygon", square).bbox() is None
    assert GeoQuery("near", "Polygon", square, min_distance=5.0).bbox() is None
    assert GeoQuery("within", "Polygon", square).bbox() == (0, 0, 1, 1)


def test_near_box_widens_towards_the_poles() -> None:
    at_equator = GeoQuery("near", "Point", [10, 0], max_distance=100_000).bbox()
    at_sixty = GeoQuery("near", "Point", [10, 60], max_distance=100_000).bbox()
    assert at_equator is not None
    assert at_sixty is not None
    radius = math.degrees(100_010 / EARTH_RADIUS_M)
    assert at_equator[1] == -radius
    assert at_equator[3] == radius
    assert at_equator[2] - 10 == radius
    # asin(sin r / cos 60 deg) is about twice r for small r.
    assert (at_sixty[2] - 10) / radius == pytest.approx(2.0, rel=1e-3)


# --- parsers never raise anything but NGSI-LD errors -----------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.just(10**400),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=40,
)
georels = st.one_of(
    st.sampled_from(
        [
            "near;maxDistance==10",
            "near;minDistance==1e3",
            "within",
            "contains",
            "intersects",
            "equals",
            "disjoint",
            "overlaps",
            "near",
            "near;maxDistance==",
        ]
    ),
    st.text(max_size=30),
    st.builds(lambda n: f"near;maxDistance=={n}", st.text(max_size=8)),
)
geometry_names = st.one_of(st.sampled_from([*GEOMETRY_TYPES, "GeometryCollection"]), st.text())
coordinate_texts = st.one_of(
    st.text(max_size=40),
    json_values.map(json.dumps),
    st.lists(
        st.lists(st.lists(st.floats(-200, 200), min_size=2, max_size=3), max_size=6), max_size=3
    ).map(json.dumps),
)


def only_ngsi_errors(call: Any, *args: Any) -> None:
    with contextlib.suppress(BadRequestData, InvalidRequest):
        call(*args)


@settings(max_examples=500, deadline=None)
@given(
    st.none() | georels,
    st.none() | geometry_names,
    st.none() | coordinate_texts | json_values,
    st.none() | st.text(max_size=10),
)
def test_query_parameters_fail_only_with_ngsi_errors(
    georel: str | None, geometry: str | None, coordinates: Any, geoproperty: str | None
) -> None:
    only_ngsi_errors(parse_geoquery, georel, geometry, coordinates, geoproperty)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "georel": georels,
                "geometry": geometry_names,
                "coordinates": coordinate_texts | json_values,
            },
            optional={"geoproperty": json_values | st.text(max_size=8)},
        ),
    )
)
def test_geoq_objects_fail_only_with_ngsi_errors(obj: object) -> None:
    only_ngsi_errors(geoquery_from_json, obj)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"type": geometry_names, "coordinates": coordinate_texts | json_values}
        ),
    )
)
def test_geoproperty_values_fail_only_with_ngsi_errors(value: object) -> None:
    try:
        checked = validate_geometry(value)
    except BadRequestData:
        return
    box = geometry_bbox(checked)
    assert -180 <= box[0] <= box[2] <= 180
    assert -90 <= box[1] <= box[3] <= 90
