"""Geo-queries: parsing (clause 4.10 / 5.2.13), each georel with hand-checked answers, distances."""

from __future__ import annotations

import math
from typing import Any

import pytest

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.geoquery import (
    EARTH_RADIUS_M,
    GeoQuery,
    geoquery_from_json,
    haversine_distance,
    parse_geoquery,
)

SQUARE = [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def line(*positions: tuple[float, float]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [list(p) for p in positions]}


def query(georel: str, geometry: str, coordinates: Any) -> GeoQuery:
    parsed = parse_geoquery(georel, geometry, coordinates)
    assert parsed is not None
    return parsed


# --- parsing ---------------------------------------------------------------------------------


def test_no_geo_parameters_is_no_query() -> None:
    assert parse_geoquery(None, None, None) is None


def test_spec_example_near_with_geoproperty() -> None:
    q = parse_geoquery("near;maxDistance==2000", "Point", "[8,40]", "observationSpace")
    assert q is not None
    assert (q.relation, q.max_distance, q.min_distance) == ("near", 2000.0, None)
    assert (q.geometry, q.coordinates, q.geoproperty) == ("Point", [8, 40], "observationSpace")
    assert q.georel == "near;maxDistance==2000"


def test_spec_example_within_defaults_to_location() -> None:
    coordinates = "[[[100.0,0.0],[101.0,0.0],[101.0,1.0],[100.0,1.0],[100.0,0.0]]]"
    q = query("within", "Polygon", coordinates)
    assert q.relation == "within"
    assert q.geoproperty == "location"
    assert q.coordinates == [[[100.0, 0.0], [101.0, 0.0], [101.0, 1.0], [100.0, 1.0], [100.0, 0.0]]]


def test_distance_may_use_any_json_number_form() -> None:
    assert query("near;minDistance==2.5e3", "Point", [8, 40]).min_distance == 2500.0
    assert query("near;maxDistance==0.5", "Point", [8, 40]).georel == "near;maxDistance==0.5"


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "geoproperty", "message"),
    [
        ("near;maxDistance==10", "Point", None, None, "'coordinates' missing"),
        ("within", None, None, None, "'geometry', 'coordinates' missing"),
        (None, "Point", "[8,40]", None, "'georel' missing"),
        (None, None, None, "location", "'geoproperty' needs a geo-query"),
        ("covers", "Point", "[8,40]", None, "Unknown georel"),
        ("Within", "Point", "[8,40]", None, "Unknown georel"),
        ("within;maxDistance==5", "Point", "[8,40]", None, "Unknown georel"),
        ("near", "Point", "[8,40]", None, "near takes exactly one distance"),
        ("near;distance==5", "Point", "[8,40]", None, "near takes exactly one distance"),
        ("near;maxDistance==1;minDistance==0.5", "Point", "[8,40]", None, "exactly one"),
        ("near;maxDistance==-5", "Point", "[8,40]", None, "positive number"),
        ("near;maxDistance==0", "Point", "[8,40]", None, "positive number"),
        ("near;maxDistance==0.0", "Point", "[8,40]", None, "positive number"),
        ("near;maxDistance==abc", "Point", "[8,40]", None, "positive number"),
        ("near;maxDistance==1e999", "Point", "[8,40]", None, "positive number"),
        ("near;maxDistance==01", "Point", "[8,40]", None, "positive number"),
        ("near;maxDistance==", "Point", "[8,40]", None, "positive number"),
        ("within", "point", "[8,40]", None, "Unsupported geometry type 'point'"),
        ("within", "GeometryCollection", "[]", None, "Unsupported geometry type"),
        ("intersects", "Point", "8,40", None, "not a valid JSON array"),
        ("intersects", "Point", "[8,40", None, "not a valid JSON array"),
        ("intersects", "Point", "[NaN,40]", None, "not a valid JSON array"),
        ("intersects", "Point", '"[8,40]"', None, "must be a JSON array"),
        ("intersects", "Point", "[8]", None, "array of 2 or 3 numbers"),
        ("intersects", "Point", "[8,40,1,2]", None, "array of 2 or 3 numbers"),
        ("intersects", "Point", "[[8,40],[9,41]]", None, "is not a number"),
        ("intersects", "Point", "[true,40]", None, "is not a number"),
        ("intersects", "Point", "[1e999,40]", None, "finite"),
        ("intersects", "Point", "[180.5,40]", None, "longitude 180.5 is outside"),
        ("intersects", "Point", "[8,-90.1]", None, "latitude -90.1 is outside"),
        ("intersects", "MultiPoint", "[]", None, "at least 1 positions"),
        ("intersects", "LineString", "[[8,40]]", None, "at least 2 positions"),
        ("intersects", "LineString", "[[8,40],[8,40]]", None, "Invalid LineString"),
        ("within", "Polygon", "[[[0,0],[1,0],[1,1],[0,0.5]]]", None, "must be closed"),
        ("within", "Polygon", "[[[0,0],[1,0],[0,0]]]", None, "at least 4 positions"),
        ("within", "Polygon", "[]", None, "at least 1 linear rings"),
        ("within", "Polygon", "[[[0,0],[1,1],[1,0],[0,1],[0,0]]]", None, "Self-intersection"),
        ("within", "MultiPolygon", "[[[0,0],[1,0],[1,1],[0,0]]]", None, "linear ring"),
        ("within", "Point", "[8,40]", "", "Invalid geoproperty"),
        ("within", "Point", "[8,40]", "my location", "Invalid geoproperty"),
    ],
)
def test_malformed_geo_queries_are_bad_request_data(
    georel: str | None,
    geometry: str | None,
    coordinates: str | None,
    geoproperty: str | None,
    message: str,
) -> None:
    with pytest.raises(BadRequestData) as caught:
        parse_geoquery(georel, geometry, coordinates, geoproperty)
    assert message in caught.value.detail


def test_near_accepts_any_reference_geometry() -> None:
    # Clause 4.10 defines near as the buffer of the reference geometry, whatever its type.
    q = query("near;maxDistance==100", "Polygon", SQUARE)
    assert q.matches(point(5, 5))


def test_geoq_object_with_array_or_string_coordinates() -> None:
    as_array = geoquery_from_json(
        {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": [8, 40]}
    )
    as_string = geoquery_from_json(
        {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": "[8,40]"}
    )
    assert as_array == as_string
    assert as_array.geoproperty == "location"


def test_geoq_round_trips_through_json() -> None:
    q = query("near;minDistance==12.5", "LineString", [[0, 0], [1, 1]]).with_property("where")
    assert q.to_json() == {
        "georel": "near;minDistance==12.5",
        "geometry": "LineString",
        "coordinates": [[0, 0], [1, 1]],
        "geoproperty": "where",
    }
    assert geoquery_from_json(q.to_json()) == q


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "must be a JSON object"),
        ({"georel": "within", "geometry": "Point"}, "geoQ lacks 'coordinates'"),
        ({"georel": "within", "geometry": "Point", "coordinates": [1, 2], "x": 1}, "Unknown"),
        ({"georel": 5, "geometry": "Point", "coordinates": [1, 2]}, "'georel' must be a string"),
        ({"georel": "within", "geometry": None, "coordinates": [1, 2]}, "'geometry' must be"),
        ({"georel": "within", "geometry": "Point", "coordinates": {}}, "must be a JSON array"),
        (
            {"georel": "within", "geometry": "Point", "coordinates": [1, 2], "geoproperty": 3},
            "'geoproperty' must be a string",
        ),
    ],
)
def test_malformed_geoq_objects(obj: object, message: str) -> None:
    with pytest.raises(BadRequestData) as caught:
        geoquery_from_json(obj)
    assert message in caught.value.detail


def test_with_property_keeps_the_query() -> None:
    q = query("within", "Polygon", SQUARE)
    expanded = q.with_property("https://uri.etsi.org/ngsi-ld/location")
    assert expanded.geoproperty == "https://uri.etsi.org/ngsi-ld/location"
    assert (expanded.relation, expanded.coordinates) == (q.relation, q.coordinates)
    assert expanded.matches(point(5, 5))
    assert q.geoproperty == "location"


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(BadRequestData):
        GeoQuery("near", "Point", [0, 0])
    with pytest.raises(BadRequestData):
        GeoQuery("within", "Point", [0, 0], max_distance=5.0)
    with pytest.raises(BadRequestData):
        GeoQuery("near", "Point", [0, 0], max_distance=-1.0)


# --- distances -------------------------------------------------------------------------------

# WGS84 geodesic distances (Vincenty inverse; JFK-SIN is GeographicLib's GeodSolve example).
GEODESICS = [
    ("Madrid-Barcelona", (-3.7038, 40.4168), (2.1734, 41.3851), 506_649),
    ("Paris-London", (2.3522, 48.8566), (-0.1278, 51.5074), 343_923),
    ("Tokyo-Osaka", (139.6917, 35.6895), (135.5023, 34.6937), 397_183),
    ("Quito-Bogota", (-78.4678, -0.1807), (-74.0721, 4.7110), 729_044),
    ("JFK-SIN", (-73.778889, 40.639722), (103.989444, 1.359167), 15_347_628),
]


@pytest.mark.parametrize(("name", "a", "b", "metres"), GEODESICS)
def test_haversine_is_within_half_a_percent_of_the_geodesic(
    name: str, a: tuple[float, float], b: tuple[float, float], metres: float
) -> None:
    assert haversine_distance(*a, *b) == pytest.approx(metres, rel=0.005)


@pytest.mark.parametrize(("name", "a", "b", "metres"), GEODESICS[:4])
def test_near_between_cities(
    name: str, a: tuple[float, float], b: tuple[float, float], metres: float
) -> None:
    target = point(*b)
    assert query(f"near;maxDistance=={metres * 1.01:.0f}", "Point", list(a)).matches(target)
    assert not query(f"near;maxDistance=={metres * 0.99:.0f}", "Point", list(a)).matches(target)
    assert query(f"near;minDistance=={metres * 0.99:.0f}", "Point", list(a)).matches(target)
    assert not query(f"near;minDistance=={metres * 1.01:.0f}", "Point", list(a)).matches(target)


def test_near_to_a_line_measures_to_its_nearest_point() -> None:
    # An east-west line 0.009 degrees north of the point: R * 0.009 degrees = 1000.8 m away.
    north = line((7.95, 40.009), (8.05, 40.009))
    expected = EARTH_RADIUS_M * math.radians(0.009)
    assert expected == pytest.approx(1000.8, abs=0.1)
    assert query("near;maxDistance==1002", "Point", [8, 40]).matches(north)
    assert not query("near;maxDistance==999", "Point", [8, 40]).matches(north)
    assert query("near;minDistance==999", "Point", [8, 40]).matches(north)


def test_near_a_polygon_that_holds_the_point_is_distance_zero() -> None:
    around = box(7.9, 39.9, 8.1, 40.1)
    assert query("near;maxDistance==1", "Point", [8, 40]).matches(around)
    assert not query("near;minDistance==1", "Point", [8, 40]).matches(around)


def test_near_a_polygon_query_measures_from_its_edge() -> None:
    q = query(
        "near;maxDistance==1000", "Polygon", [[[100, 0], [101, 0], [101, 1], [100, 1], [100, 0]]]
    )
    # 0.0089 degrees east of the edge at lat 0.5: 989.6 m; 0.0095 degrees: 1056 m.
    assert q.matches(point(101.0089, 0.5))
    assert not q.matches(point(101.0095, 0.5))
    assert q.matches(point(100.5, 0.5))


def test_near_across_the_antimeridian() -> None:
    q = query("near;maxDistance==300", "Point", [179.999, 0])
    assert q.matches(point(-179.999, 0))  # 222 m away over the antimeridian
    assert not q.matches(point(-179.99, 0))
    assert q.bbox() == (
        -180.0,
        pytest.approx(-0.0027, abs=1e-4),
        180.0,
        pytest.approx(0.0027, abs=1e-4),
    )


def test_near_over_the_pole() -> None:
    q = query("near;maxDistance==50000", "Point", [0, 89.9])
    assert q.matches(point(180, 89.9))  # 22 km away, across the pole
    west, south, east, north = q.bbox() or (0, 0, 0, 0)
    assert (west, east, north) == (-180.0, 180.0, 90.0)
    assert south == pytest.approx(89.9 - math.degrees(50010 / EARTH_RADIUS_M))


def test_near_multipoints_use_the_closest_pair() -> None:
    q = query("near;maxDistance==2000", "MultiPoint", [[0, 0], [1, 1]])
    assert q.matches({"type": "MultiPoint", "coordinates": [[5, 5], [1.01, 1.01]]})
    assert not q.matches({"type": "MultiPoint", "coordinates": [[5, 5], [1.1, 1.1]]})


# --- topological relations -------------------------------------------------------------------

RELATION_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("within", point(5, 5), True),
    ("within", point(0, 5), False),  # on the boundary: not within (DE-9IM)
    ("within", point(11, 5), False),
    ("within", box(2, 2, 3, 3), True),
    ("within", box(8, 8, 12, 12), False),
    ("within", line((1, 1), (9, 9)), True),
    ("contains", box(-1, -1, 11, 11), True),
    ("contains", box(0, 0, 10, 10), True),
    ("contains", box(2, 2, 3, 3), False),
    ("contains", point(5, 5), False),
    ("intersects", point(10, 5), True),  # touching the boundary
    ("intersects", line((-5, 5), (5, 5)), True),
    ("intersects", box(20, 20, 30, 30), False),
    ("disjoint", point(10, 5), False),
    ("disjoint", box(20, 20, 30, 30), True),
    ("disjoint", line((-5, -5), (-1, -1)), True),
    (
        "equals",
        {"type": "Polygon", "coordinates": [[[10, 0], [10, 10], [0, 10], [0, 0], [10, 0]]]},
        True,
    ),
    ("equals", box(0, 0, 10, 9), False),
    ("overlaps", box(5, 5, 15, 15), True),
    ("overlaps", box(2, 2, 3, 3), False),  # inside: within, not overlapping
    ("overlaps", box(20, 20, 30, 30), False),
    ("overlaps", line((-5, 5), (5, 5)), False),  # different dimensions never overlap
]


@pytest.mark.parametrize(("georel", "target", "expected"), RELATION_CASES)
def test_relations_against_a_square(georel: str, target: dict[str, Any], expected: bool) -> None:
    q = query(georel, "Polygon", SQUARE)
    assert q.matches(target) is expected
    assert q.matches_many([target]) == [expected]


def test_within_a_polygon_with_a_hole() -> None:
    holed = [SQUARE[0], [[4, 4], [4, 6], [6, 6], [6, 4], [4, 4]]]
    q = query("within", "Polygon", holed)
    assert q.matches(point(2, 2))
    assert not q.matches(point(5, 5))
    assert q.matches_many([point(2, 2), point(5, 5)]) == [True, False]
    assert not q.matches(box(3, 3, 7, 7))


def test_relations_with_a_point_reference() -> None:
    assert query("contains", "Point", [5, 5]).matches(box(0, 0, 10, 10))
    assert query("contains", "Point", [5, 5]).matches(point(5, 5))
    assert query("equals", "Point", [5, 5]).matches(point(5, 5))
    assert not query("equals", "Point", [5, 5]).matches(point(5, 5.0001))
    assert query("within", "Point", [5, 5]).matches(point(5, 5))
    assert query("intersects", "LineString", [[0, 0], [10, 10]]).matches(point(5, 5))


@pytest.mark.parametrize(
    "georel",
    [
        "within",
        "contains",
        "intersects",
        "disjoint",
        "equals",
        "overlaps",
        "near;maxDistance==1",
        "near;minDistance==1",
    ],
)
@pytest.mark.parametrize(
    "junk",
    [
        None,
        "Point",
        {},
        {"type": "Point"},
        {"type": "Point", "coordinates": "[1,2]"},
        {"type": "Point", "coordinates": ["5", "5"]},
        {"type": "Point", "coordinates": [True, 5]},
        {"type": "Circle", "coordinates": [1, 2]},
        {"type": "Polygon", "coordinates": [[1, 2]]},
        {"type": "LineString", "coordinates": [[1, "x"], [2, 3]]},
    ],
)
def test_non_geometries_never_match(georel: str, junk: object) -> None:
    q = query(georel, "Polygon", SQUARE)
    assert q.matches(junk) is False
    assert q.matches_many([junk, junk]) == [False, False]


def test_queries_are_hashable_values() -> None:
    a = query("near;maxDistance==5", "Point", [8, 40])
    b = query("near;maxDistance==5.0", "Point", "[8.0, 40.0]")
    assert a == b
    assert hash(a) == hash(b)
    assert a != a.with_property("observationSpace")
