"""Parse request payloads (normalized or concise NGSI-LD JSON) into the internal, expanded form.

Validation happens here, once, so that everything below (operations, stores, queries) can trust
the shape documented in `model.py`. Every malformed input raises `BadRequestData` naming the
offending member.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeGuard

from cityhub.ngsild import geojson
from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.model import (
    ATTRIBUTE_TYPES,
    ENTITY_CORE_MEMBERS,
    GEO_ATTRIBUTES,
    INSTANCE_CORE_MEMBERS,
    VALUE_MEMBER,
    Entity,
    Instance,
)
from cityhub.ngsild.terms import Terms

NULL = "urn:ngsi-ld:null"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
# Characters the spec forbids in attribute names and type names (4.6.2).
_FORBIDDEN_NAME = re.compile(r"[<>\"'=;()\s\x00-\x1f\x7f]")
_GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)
_IMPLIED_TYPE = {member: kind for kind, member in VALUE_MEMBER.items() if kind != "GeoProperty"}
_TEMPORAL_MEMBERS = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
# Members of an instance payload not copied as sent: its type (already read) and the
# system-managed members, which the spec says to ignore on input.
_NOT_COPIED = frozenset({"type", "createdAt", "modifiedAt", "instanceId", "deletedAt"})


def is_uri(text: object) -> bool:
    """True for an absolute URI, as NGSI-LD requires for entity ids and Relationship objects."""
    return isinstance(text, str) and len(text) <= 2048 and _URI.match(text) is not None


def check_entity_id(entity_id: object) -> str:
    if not is_uri(entity_id):
        raise BadRequestData(f"entity id must be an absolute URI, got {entity_id!r}")
    assert isinstance(entity_id, str)
    return entity_id


def check_name(name: object, what: str = "attribute name") -> str:
    if not isinstance(name, str) or len(name) > 512 or not _valid_name(name):
        raise BadRequestData(f"invalid {what}: {name!r}")
    return name


@lru_cache(maxsize=4096)
def _valid_name(name: str) -> bool:
    """Cached (names of at most 512 characters): a batch repeats its attribute names."""
    return bool(name) and _FORBIDDEN_NAME.search(name) is None


def parse_datetime(text: object, member: str) -> datetime:
    """Parse an ISO 8601 date-time with a timezone (a bare one is taken as UTC)."""
    if not isinstance(text, str):
        raise BadRequestData(f"{member} must be an ISO 8601 date-time string, got {text!r}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{member} is not an ISO 8601 date-time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise BadRequestData(f"{member} is out of the range of date-times: {text!r}") from None


def format_datetime(moment: datetime) -> str:
    """The one textual form of instants the broker stores and returns (UTC, microseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def normalize_datetime(text: object, member: str) -> str:
    if isinstance(text, str):
        return _normalized(text, member)
    return format_datetime(parse_datetime(text, member))


@lru_cache(maxsize=4096)
def _normalized(text: str, member: str) -> str:
    """The readings of a batch mostly share their observedAt: parsing and printing it once
    per text saved 7% of a batch upsert's CPU. Errors are raised, not cached."""
    return format_datetime(parse_datetime(text, member))


def expand_types(raw: object, terms: Terms) -> list[str]:
    """Entity type(s) as a sorted list of IRIs."""
    names = raw if isinstance(raw, list) else [raw]
    if not names:
        raise BadRequestData("entity type must not be empty")
    return sorted({terms.expand_term(check_name(name, "entity type")) for name in names})


def parse_scope(raw: object) -> list[str]:
    scopes = raw if isinstance(raw, list) else [raw]
    for scope in scopes:
        if not isinstance(scope, str) or not re.fullmatch(r"(/[^/#+\s]+)+", scope):
            raise BadRequestData(f"invalid scope {scope!r}: expected /a/b/c")
    return sorted(set(scopes))


def parse_entity(
    body: object, terms: Terms, *, require_type: bool = True, allow_null: bool = False
) -> Entity:
    """An entity payload -> internal entity (without timestamps; operations add those)."""
    if not isinstance(body, dict):
        raise BadRequestData("an entity must be a JSON object")
    raw_id = body.get("id", body.get("@id"))
    if raw_id is None:
        raise BadRequestData("entity id is missing")
    entity: Entity = {"id": check_entity_id(raw_id)}
    raw_type = body.get("type", body.get("@type"))
    if raw_type is not None:
        entity["type"] = expand_types(raw_type, terms)
    elif require_type:
        raise BadRequestData("entity type is missing")
    if body.get("scope") is not None:
        entity["scope"] = parse_scope(body["scope"])
    attrs: dict[str, list[Instance]] = {}
    for name, raw in body.items():
        if name not in ENTITY_CORE_MEMBERS:
            iri = terms.expand_term(check_name(name))
            attrs[iri] = parse_attribute(iri, raw, terms, allow_null=allow_null)
    entity["attrs"] = attrs
    return entity


def parse_attributes(
    members: dict[str, Any], terms: Terms, *, allow_null: bool = False
) -> dict[str, list[Instance]]:
    """A JSON object of attributes (name -> value) -> expanded name -> list of instances."""
    attrs: dict[str, list[Instance]] = {}
    for name, raw in members.items():
        iri = terms.expand_term(check_name(name))
        attrs[iri] = parse_attribute(iri, raw, terms, allow_null=allow_null)
    return attrs


def parse_attribute(
    iri: str, raw: object, terms: Terms, *, allow_null: bool = False
) -> list[Instance]:
    """One attribute's payload -> its instances (several when datasetIds tell them apart)."""
    if allow_null and raw == NULL:
        return [{"type": "Property", "value": NULL}]
    if isinstance(raw, list) and raw and all(_looks_like_instance(item) for item in raw):
        instances = [_parse_instance(iri, item, terms, allow_null) for item in raw]
        dataset_ids = [inst.get("datasetId") for inst in instances]
        if len(set(dataset_ids)) != len(dataset_ids):
            raise BadRequestData(f"attribute {iri} has two instances with the same datasetId")
        return instances
    return [_parse_instance(iri, raw, terms, allow_null)]


def _is_one_of(value: object, names: frozenset[str]) -> TypeGuard[str]:
    """Membership that tolerates any JSON value (a list or an object is unhashable)."""
    return isinstance(value, str) and value in names


def _looks_like_instance(item: object) -> bool:
    if not isinstance(item, dict):
        return False
    kind = item.get("type")
    return (type(kind) is str and kind in ATTRIBUTE_TYPES) or any(
        m in item for m in _IMPLIED_TYPE)


def _is_geometry(value: object) -> bool:
    return (
        isinstance(value, dict)
        and _is_one_of(value.get("type"), _GEOMETRY_TYPES)
        and "coordinates" in value
    )


def _parse_instance(iri: str, raw: object, terms: Terms, allow_null: bool) -> Instance:
    if not isinstance(raw, dict) or not _looks_like_instance(raw):
        # Concise form: a bare value (or a bare GeoJSON geometry).
        if raw is None:
            raise BadRequestData(f"attribute {iri} has a null value")
        geo = _is_geometry(raw) or iri in GEO_ATTRIBUTES
        raw = {"type": "GeoProperty" if geo else "Property", "value": raw}
    kind = raw.get("type")
    if kind is None:
        kind = next(k for m, k in _IMPLIED_TYPE.items() if m in raw)
        if kind == "Property" and (_is_geometry(raw.get("value")) or iri in GEO_ATTRIBUTES):
            kind = "GeoProperty"
    if not _is_one_of(kind, ATTRIBUTE_TYPES):
        raise BadRequestData(f"attribute {iri} has unknown type {kind!r}")
    member = VALUE_MEMBER[kind]
    if member not in raw:
        raise BadRequestData(f"attribute {iri} of type {kind} needs a {member!r} member")
    value = raw[member]
    instance: Instance = {"type": kind, member: _check_value(iri, kind, value, terms, allow_null)}
    for key, item in raw.items():
        if key == member or key in _NOT_COPIED:
            continue
        if key == "observedAt":
            instance["observedAt"] = normalize_datetime(item, f"{iri}.observedAt")
        elif key == "unitCode":
            if not isinstance(item, str) or not item:
                raise BadRequestData(f"{iri}.unitCode must be a non-empty string")
            instance["unitCode"] = item
        elif key == "datasetId":
            if not is_uri(item):
                raise BadRequestData(f"{iri}.datasetId must be a URI, got {item!r}")
            instance["datasetId"] = item
        elif key in ("objectType", "lang"):
            instance[key] = item
        elif key in INSTANCE_CORE_MEMBERS or key == "@context":
            raise BadRequestData(f"member {key!r} is not allowed in a {kind} ({iri})")
        else:
            sub_iri = terms.expand_term(check_name(key, "sub-attribute name"))
            if allow_null and item == NULL:
                instance.setdefault("sub", {})[sub_iri] = {"type": "Property", "value": NULL}
            else:
                instance.setdefault("sub", {})[sub_iri] = _parse_instance(
                    sub_iri, item, terms, allow_null
                )
    return instance


def _check_value(iri: str, kind: str, value: object, terms: Terms, allow_null: bool) -> object:
    if value is None:
        raise BadRequestData(f"attribute {iri} has a null {VALUE_MEMBER[kind]}")
    if allow_null and value == NULL:
        return value
    if kind == "Property":  # the common case first: nothing to check
        return value
    if kind == "GeoProperty":
        try:
            return geojson.validate_geometry(value)
        except BadRequestData as error:
            raise BadRequestData(f"GeoProperty {iri}: {error.detail}") from None
    if kind == "Relationship":
        objects = value if isinstance(value, list) else [value]
        if not objects or not all(is_uri(obj) for obj in objects):
            raise BadRequestData(f"Relationship {iri} must point to URI(s), got {value!r}")
    elif kind == "ListRelationship":
        if not isinstance(value, list) or not all(
            is_uri(obj.get("object") if isinstance(obj, dict) else obj) for obj in value
        ):
            raise BadRequestData(f"ListRelationship {iri} needs a list of URIs")
    elif kind == "LanguageProperty":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str | list) for k, v in value.items()
        ):
            raise BadRequestData(f"LanguageProperty {iri} needs a languageMap of strings")
    elif kind == "ListProperty":
        if not isinstance(value, list):
            raise BadRequestData(f"ListProperty {iri} needs a valueList array")
    elif kind == "VocabProperty":
        words = value if isinstance(value, list) else [value]
        if not words or not all(isinstance(w, str) and w for w in words):
            raise BadRequestData(f"VocabProperty {iri} needs vocab term(s)")
        expanded = [terms.expand_term(w) for w in words]  # type: ignore[arg-type]
        return expanded if isinstance(value, list) else expanded[0]
    return value
