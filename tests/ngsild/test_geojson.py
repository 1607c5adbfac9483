"""GeoProperty values (RFC 7946 geometries) and the GeoJSON representation (clause 4.5.16)."""

from __future__ import annotations

from typing import Any

import pytest

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.geojson import (
    bboxes_intersect,
    feature,
    feature_collection,
    geometry_bbox,
    geometry_of,
    validate_geometry,
)

CONTEXT = [
    "https://example.org/context.jsonld",
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
]
POINT = {"type": "Point", "coordinates": [-3.7038, 40.4168]}
AREA = {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]]]}

GEOMETRIES: list[tuple[dict[str, Any], tuple[float, float, float, float]]] = [
    (POINT, (-3.7038, 40.4168, -3.7038, 40.4168)),
    ({"type": "Point", "coordinates": [1, 2, 650.5]}, (1, 2, 1, 2)),
    ({"type": "MultiPoint", "coordinates": [[1, 2], [-1, 5]]}, (-1, 2, 1, 5)),
    ({"type": "LineString", "coordinates": [[1, 2], [3, -4], [0, 0]]}, (0, -4, 3, 2)),
    (
        {"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]], [[-5, 0], [0, 9]]]},
        (-5, 0, 3, 9),
    ),
    (AREA, (0, 0, 2, 1)),
    (
        {
            "type": "Polygon",
            "coordinates": [
                [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
                [[2, 2], [2, 4], [4, 4], [4, 2], [2, 2]],
            ],
        },
        (0, 0, 10, 10),
    ),
    (
        {
            "type": "MultiPolygon",
            "coordinates": [
                [[[0, 0], [1, 0], [1, 1], [0, 0]]],
                [[[170, -50], [180, -50], [180, -40], [170, -50]]],
            ],
        },
        (0, -50, 180, 1),
    ),
]


@pytest.mark.parametrize(("geometry", "box"), GEOMETRIES)
def test_valid_geometries_and_their_boxes(
    geometry: dict[str, Any], box: tuple[float, float, float, float]
) -> None:
    assert validate_geometry(geometry) == geometry
    assert geometry_bbox(geometry) == box


def test_string_coordinates_are_parsed_and_other_members_kept() -> None:
    value = {"type": "LineString", "coordinates": "[[1,2],[3,4]]", "bbox": [1, 2, 3, 4]}
    assert validate_geometry(value) == {
        "type": "LineString",
        "coordinates": [[1, 2], [3, 4]],
        "bbox": [1, 2, 3, 4],
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("POINT (1 2)", "must be a GeoJSON geometry object"),
        ({"type": "Point"}, "needs a 'coordinates' member"),
        (
            {"type": "GeometryCollection", "geometries": [POINT]},
            "GeometryCollection is not allowed",
        ),
        ({"type": "Feature", "coordinates": [1, 2]}, "Unsupported geometry type 'Feature'"),
        ({"type": "Point", "coordinates": [1, 2, 3, 4]}, "2 or 3 numbers"),
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1, 5]]}, "all have 2, or all have 3"),
        ({"type": "Point", "coordinates": ["1", 2]}, "is not a number"),
        ({"type": "Point", "coordinates": [-181, 2]}, "longitude -181.0 is outside"),
        ({"type": "Point", "coordinates": [1, 95]}, "latitude 95.0 is outside"),
        ({"type": "Point", "coordinates": [float("nan"), 2]}, "finite"),
        ({"type": "Point", "coordinates": "[1, 2"}, "not a valid JSON array"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "closed"),
        ({"type": "MultiLineString", "coordinates": [[[1, 2]]]}, "at least 2 positions"),
    ],
)
def test_invalid_geometries(value: object, message: str) -> None:
    with pytest.raises(BadRequestData) as caught:
        validate_geometry(value)
    assert message in caught.value.detail


@pytest.mark.parametrize(
    "junk",
    [
        None,
        {},
        {"type": "Circle", "coordinates": [1, 2]},
        {"type": "Point", "coordinates": []},
        {"type": "LineString", "coordinates": [1, 2]},
    ],
)
def test_box_of_a_non_geometry_is_bad_request_data(junk: Any) -> None:
    with pytest.raises(BadRequestData):
        geometry_bbox(junk)


def test_box_intersection_counts_touching() -> None:
    assert bboxes_intersect((0, 0, 1, 1), (1, 1, 2, 2))
    assert not bboxes_intersect((0, 0, 1, 1), (1.5, 0, 2, 1))
    assert not bboxes_intersect((0, 0, 1, 1), (0, 1.5, 1, 2))


# --- the representation -------------------------------------------------------------------

NORMALIZED = {
    "id": "urn:ngsi-ld:Building:1",
    "type": "Building",
    "name": {"type": "Property", "value": "Casa"},
    "location": {"type": "GeoProperty", "value": POINT, "observedAt": "2026-01-01T00:00:00Z"},
    "area": {"type": "GeoProperty", "value": AREA},
    "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:7"},
}
KEY_VALUES = {
    "id": "urn:ngsi-ld:Building:1",
    "type": "Building",
    "name": "Casa",
    "location": POINT,
    "area": AREA,
    "owner": "urn:ngsi-ld:Person:7",
}


def test_normalized_entity_as_a_feature() -> None:
    rendered = feature(NORMALIZED, "location", CONTEXT)
    assert rendered == {
        "id": "urn:ngsi-ld:Building:1",
        "type": "Feature",
        "geometry": POINT,
        "properties": {k: v for k, v in NORMALIZED.items() if k != "id"},
        "@context": CONTEXT,
    }


def test_key_values_entity_on_another_geometry_property() -> None:
    rendered = feature(KEY_VALUES, "area", None)
    assert rendered["geometry"] == AREA
    assert rendered["properties"]["type"] == "Building"
    assert rendered["properties"]["location"] == POINT
    assert "@context" not in rendered


def test_concise_geoproperty_with_sub_attributes() -> None:
    concise = {"id": "urn:x", "type": "T", "location": {"value": POINT, "observedAt": "2026"}}
    assert feature(concise, "location", None)["geometry"] == POINT


@pytest.mark.parametrize(
    "entity",
    [
        {"id": "urn:x", "type": "T"},
        {"id": "urn:x", "type": "T", "location": {"type": "Property", "value": "Madrid"}},
        {
            "id": "urn:x",
            "type": "T",
            "location": {"type": "GeoProperty", "value": {"type": "Point"}},
        },
        {"id": "urn:x", "type": "T", "location": 42},
    ],
)
def test_missing_or_invalid_geometry_is_null(entity: dict[str, Any]) -> None:
    rendered = feature(entity, "location", None)
    assert rendered["geometry"] is None
    assert rendered["properties"]["type"] == "T"


def test_several_instances_pick_the_default_or_the_dataset() -> None:
    other = {"type": "Point", "coordinates": [1, 1]}
    instances = [
        {"type": "GeoProperty", "value": other, "datasetId": "urn:gps"},
        {"type": "GeoProperty", "value": POINT},
    ]
    entity = {"id": "urn:x", "type": "T", "location": instances}
    assert feature(entity, "location", None)["geometry"] == POINT
    assert feature(entity, "location", None, dataset_id="urn:gps")["geometry"] == other
    assert feature(entity, "location", None, dataset_id="urn:none")["geometry"] is None
    assert geometry_of(instances[:1]) is None  # no default instance
    simplified = {"dataset": {"@none": POINT, "urn:gps": other}}
    assert geometry_of(simplified) == POINT
    assert geometry_of(simplified, "urn:gps") == other


def test_feature_collection_carries_one_context() -> None:
    with_context = {**KEY_VALUES, "@context": CONTEXT}
    collection = feature_collection([with_context, NORMALIZED], "location", CONTEXT)
    assert collection["type"] == "FeatureCollection"
    assert collection["@context"] == CONTEXT
    assert [f["id"] for f in collection["features"]] == ["urn:ngsi-ld:Building:1"] * 2
    for item in collection["features"]:
        assert item["type"] == "Feature"
        assert item["geometry"] == POINT
        assert "@context" not in item
        assert "@context" not in item["properties"]
    assert feature_collection([], "location", None) == {"type": "FeatureCollection", "features": []}
