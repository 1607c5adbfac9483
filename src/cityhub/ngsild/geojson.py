"""GeoJSON in NGSI-LD: checking GeoProperty geometries (RFC 7946, ETSI GS CIM 009 clause 4.7.1),
their lon/lat boxes, and the GeoJSON representation of entities (clause 4.5.16).

Geometries are the six RFC 7946 types NGSI-LD allows (GeometryCollection is excluded).
Positions are `[longitude, latitude]` or `[longitude, latitude, altitude]`; lines and polygon
edges are straight in lon/lat, and a geometry crossing the antimeridian must be cut in two, as
RFC 7946 section 3.1.9 asks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import shapely
from shapely.errors import ShapelyError

from cityhub.ngsild.errors import BadRequestData

GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")

# Array nesting of `coordinates` above a position, per geometry type.
_DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}

BBox = tuple[float, float, float, float]
"""A lon/lat box: (min longitude, min latitude, max longitude, max latitude)."""

Geometry = dict[str, Any]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def parse_coordinates_text(text: str) -> Any:
    """Parse `coordinates` sent as a JSON string (query parameter or JSON-LD-friendly form)."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise BadRequestData(f"'coordinates' is not a valid JSON array: {text[:80]!r}") from exc


def _position(value: object, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or not 2 <= len(value) <= 3:
        raise BadRequestData(
            f"{where}: a position must be an array of 2 or 3 numbers "
            f"([longitude, latitude] or [longitude, latitude, altitude]), got {short_repr(value)}"
        )
    numbers = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise BadRequestData(f"{where}: {short_repr(item)} in a position is not a number")
        try:
            number = float(item)
        except OverflowError as exc:
            raise BadRequestData(f"{where}: {short_repr(item)} is out of range") from exc
        if not math.isfinite(number):
            raise BadRequestData(f"{where}: positions must hold finite numbers")
        numbers.append(number)
    lon, lat = numbers[0], numbers[1]
    if not -180.0 <= lon <= 180.0:
        raise BadRequestData(f"{where}: longitude {lon} is outside [-180, 180]")
    if not -90.0 <= lat <= 90.0:
        raise BadRequestData(f"{where}: latitude {lat} is outside [-90, 90]")
    return lon, lat


def _array(value: object, where: str, minimum: int, what: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise BadRequestData(f"{where}: expected an array of {what}, got {short_repr(value)}")
    if len(value) < minimum:
        raise BadRequestData(f"{where}: needs at least {minimum} {what}, got {len(value)}")
    return value


def _line(value: object, where: str) -> None:
    for i, item in enumerate(_array(value, where, 2, "positions")):
        _position(item, f"{where}[{i}]")


def _polygon(value: object, where: str) -> None:
    for r, ring in enumerate(_array(value, where, 1, "linear rings")):
        ring_where = f"{where}[{r}]"
        positions = [
            _position(p, f"{ring_where}[{i}]")
            for i, p in enumerate(_array(ring, ring_where, 4, "positions (a linear ring)"))
        ]
        if positions[0] != positions[-1]:
            raise BadRequestData(
                f"{ring_where}: a linear ring must be closed (its first and last positions equal)"
            )


def check_coordinates(geometry_type: object, coordinates: object) -> shapely.Geometry:
    """Check `coordinates` against `geometry_type` and return the shapely geometry.

    Raises BadRequestData naming the offending part; polygons must also be valid in the OGC
    Simple Features sense (no self-intersection), since topological predicates on an invalid
    polygon have no defined answer.
    """
    if geometry_type not in _DEPTH:
        raise BadRequestData(
            f"Unsupported geometry type {short_repr(geometry_type)}; expected one of "
            + ", ".join(GEOMETRY_TYPES)
        )
    where = f"{geometry_type} coordinates"
    if geometry_type == "Point":
        _position(coordinates, where)
    elif geometry_type == "MultiPoint":
        for i, item in enumerate(_array(coordinates, where, 1, "positions")):
            _position(item, f"{where}[{i}]")
    elif geometry_type == "LineString":
        _line(coordinates, where)
    elif geometry_type == "MultiLineString":
        for i, item in enumerate(_array(coordinates, where, 1, "line strings")):
            _line(item, f"{where}[{i}]")
    elif geometry_type == "Polygon":
        _polygon(coordinates, where)
    else:
        for i, item in enumerate(_array(coordinates, where, 1, "polygons")):
            _polygon(item, f"{where}[{i}]")
    if len({len(p) for p in _positions(coordinates, _DEPTH[geometry_type])}) > 1:
        raise BadRequestData(f"{where}: positions must all have 2, or all have 3, numbers")
    try:
        shape = shape_of(geometry_type, coordinates)
    except (ShapelyError, ValueError) as exc:
        raise BadRequestData(f"Invalid {geometry_type}: {exc}") from exc
    if geometry_type != "Point" and not shapely.is_valid(shape):
        raise BadRequestData(f"Invalid {geometry_type}: {shapely.is_valid_reason(shape)}")
    return shape


def shape_of(geometry_type: object, coordinates: Any) -> shapely.Geometry:
    """Build the shapely geometry of GeoJSON coordinates without checking them (fast path).

    Raises ShapelyError, ValueError, TypeError or IndexError on malformed input.
    """
    if geometry_type == "Point":
        return shapely.Point(coordinates[0], coordinates[1])
    if geometry_type == "Polygon":
        return _polygon_shape(coordinates)
    if geometry_type == "LineString":
        return shapely.linestrings(coordinates)
    if geometry_type == "MultiPoint":
        return shapely.multipoints(coordinates)
    if geometry_type == "MultiLineString":
        return shapely.multilinestrings([shapely.linestrings(line) for line in coordinates])
    if geometry_type == "MultiPolygon":
        return shapely.multipolygons([_polygon_shape(polygon) for polygon in coordinates])
    raise ValueError(f"unsupported geometry type {geometry_type!r}")


def _polygon_shape(rings: Any) -> shapely.Geometry:
    if len(rings) == 1:
        return shapely.polygons(rings[0])
    return shapely.polygons(rings[0], holes=[shapely.linearrings(ring) for ring in rings[1:]])


def validate_geometry(value: object) -> Geometry:
    """Check a GeoProperty value is a GeoJSON geometry NGSI-LD allows; return it normalised.

    `coordinates` given as a JSON string (allowed for JSON-LD compatibility) comes back parsed;
    other members (such as `bbox`) are kept as sent.
    """
    if not isinstance(value, Mapping):
        raise BadRequestData(
            f"A GeoProperty value must be a GeoJSON geometry object, got {short_repr(value)}"
        )
    geometry_type = value.get("type")
    if geometry_type == "GeometryCollection":
        raise BadRequestData("GeometryCollection is not allowed as a GeoProperty value")
    if "coordinates" not in value:
        raise BadRequestData("A GeoJSON geometry needs a 'coordinates' member")
    coordinates = value["coordinates"]
    if isinstance(coordinates, str):
        coordinates = parse_coordinates_text(coordinates)
    if geometry_type == "Point":  # all check_coordinates does for a point, without shapely
        _position(coordinates, "Point coordinates")
    else:
        check_coordinates(geometry_type, coordinates)
    return {**value, "coordinates": coordinates}


def _positions(coordinates: Any, depth: int) -> Iterator[Any]:
    if depth == 0:
        yield coordinates
    else:
        for item in coordinates:
            yield from _positions(item, depth - 1)


def geometry_bbox(geometry: Mapping[str, Any]) -> BBox:
    """The lon/lat box of a GeoJSON geometry (assumed checked by `validate_geometry`).

    Raises BadRequestData when the value is not a geometry at all, so a store never indexes junk.
    """
    try:
        depth = _DEPTH[geometry["type"]]
        coordinates = geometry["coordinates"]
        if depth == 0:
            x, y = float(coordinates[0]), float(coordinates[1])
            return (x, y, x, y)
        xs: list[float] = []
        ys: list[float] = []
        for position in _positions(coordinates, depth):
            xs.append(float(position[0]))
            ys.append(float(position[1]))
        return (min(xs), min(ys), max(xs), max(ys))
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        raise BadRequestData(f"Not a GeoJSON geometry: {short_repr(geometry)}") from exc


def bboxes_intersect(a: BBox, b: BBox) -> bool:
    """Whether two lon/lat boxes share at least one point (touching counts)."""
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


# --- GeoJSON representation of entities (clause 4.5.16) -------------------------------------


def geometry_of(attribute: object, dataset_id: str | None = None) -> Geometry | None:
    """The geometry held by a rendered GeoProperty, or None (clause 4.5.16.1).

    Accepts the normalized form (`{"type": "GeoProperty", "value": {...}}`), the concise form
    (the geometry itself, or `{"value": {...}, ...}` when it keeps sub-attributes), keyValues (the
    geometry itself), several instances as a list, and the simplified multi-instance form
    `{"dataset": {"@none": ..., "<datasetId>": ...}}`. The instance with `dataset_id` is chosen,
    else the default instance (no datasetId). A value that is not a valid geometry gives None.
    """
    if isinstance(attribute, list):
        for instance in attribute:
            if isinstance(instance, Mapping) and instance.get("datasetId") == dataset_id:
                return geometry_of(instance, dataset_id)
        return None
    if not isinstance(attribute, Mapping):
        return None
    candidate: object
    if "type" not in attribute and isinstance(attribute.get("dataset"), Mapping):
        candidate = attribute["dataset"].get("@none" if dataset_id is None else dataset_id)
    elif attribute.get("datasetId") != dataset_id:
        return None
    elif "value" in attribute:
        candidate = attribute["value"]
    else:
        candidate = attribute
    try:
        return validate_geometry(candidate)
    except BadRequestData:
        return None


def feature(
    entity: Mapping[str, Any],
    geometry_property: str,
    context: object | None,
    *,
    dataset_id: str | None = None,
) -> dict[str, Any]:
    """One entity, already rendered in its compacted form, as a GeoJSON Feature.

    `properties` holds every member but `id` and `@context` (so `type` and the selected
    GeoProperty too); `@context` is added when `context` is not None.
    """
    rendered: dict[str, Any] = {
        "id": entity.get("id"),
        "type": "Feature",
        "geometry": geometry_of(entity.get(geometry_property), dataset_id),
        "properties": {k: v for k, v in entity.items() if k not in ("id", "@context")},
    }
    if context is not None:
        rendered["@context"] = context
    return rendered


def feature_collection(
    entities: Sequence[Mapping[str, Any]],
    geometry_property: str,
    context: object | None,
    *,
    dataset_id: str | None = None,
) -> dict[str, Any]:
    """Entities as a GeoJSON FeatureCollection; one `@context` at the top, none per Feature."""
    collection: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [feature(e, geometry_property, None, dataset_id=dataset_id) for e in entities],
    }
    if context is not None:
        collection["@context"] = context
    return collection


def short_repr(value: object) -> str:
    """repr() cut to 60 characters, for error messages."""
    try:
        text = repr(value)
    except ValueError:  # an int past sys.get_int_max_str_digits()
        return "<a number too large to show>"
    return text if len(text) <= 60 else text[:57] + "..."
