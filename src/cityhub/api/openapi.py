"""OpenAPI documentation of the NGSI-LD request bodies and responses, as plain JSON schemas.

Handlers read their bodies themselves (`ldio.read_json`) because NGSI-LD negotiates the @context
by Content-Type and Link header, so FastAPI cannot infer a request body. The routers attach the
schemas here with `openapi_extra=request_body(...)` and `responses=responses(...)`: documentation
only, parsing stays in `ngsild.payload`. Schemas are inlined (no `$ref`) so that a router needs
nothing from the app factory. Rules that would make generated test data costly (attribute-name
and scope syntax) are stated in descriptions rather than as `pattern`/`propertyNames`.
"""

from __future__ import annotations

import copy
from typing import Any

from cityhub.ngsild.model import ATTRIBUTE_TYPES

Schema = dict[str, Any]
JSON, LD_JSON, GEO_JSON = "application/json", "application/ld+json", "application/geo+json"
PROBLEM = "application/problem+json"

URI: Schema = {
    "type": "string",
    "pattern": r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$",
    "maxLength": 2048,
    "description": "An absolute URI",
}
NAME: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 512,
    "pattern": "^[^<>\"'=;()\\s\\x00-\\x1f\\x7f]+$",
    "description": "A term of the @context or an IRI (NGSI-LD 4.6.2 forbids <>\"'=;() "
    "and whitespace)",
}
NAMES: Schema = {"anyOf": [NAME, {"type": "array", "items": NAME, "minItems": 1}]}
SCOPE: Schema = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    "description": "Scope(s) of the entity: /a/b/c, segments without whitespace, # or +",
}
CONTEXT: Schema = {
    "description": "The JSON-LD @context: a URL, an inline object, or a list of those",
    "anyOf": [
        {"type": "string", "format": "uri"},
        {"type": "object"},
        {"type": "array", "items": {"anyOf": [{"type": "string", "format": "uri"},
                                             {"type": "object"}]}},
    ],
}
GEOMETRY: Schema = {
    "type": "object",
    "description": "A GeoJSON geometry",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"enum": ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                          "MultiPolygon"]},
        "coordinates": {"type": "array"},
    },
}
# A concise attribute may be any JSON value except null (null is refused, 4.5.x).
_NOT_NULL: Schema = {"type": ["string", "number", "integer", "boolean", "array", "object"]}
INSTANCE: Schema = {
    "type": "object",
    "description": "One attribute instance in the normalized form: a type, or a value member "
    "that implies it (value, object, languageMap, ...); members other than the core ones are its "
    "sub-attributes (normalized or concise)",
    "properties": {
        "type": {"enum": sorted(ATTRIBUTE_TYPES)},
        "value": _NOT_NULL,
        "object": {"anyOf": [URI, {"type": "array", "items": URI, "minItems": 1}]},
        "languageMap": {"type": "object", "additionalProperties": {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}},
        "valueList": {"type": "array"},
        "objectList": {"type": "array", "items": {"anyOf": [URI, {
            "type": "object", "required": ["object"], "properties": {"object": URI}}]}},
        "vocab": {"anyOf": [NAME, {"type": "array", "items": NAME, "minItems": 1}]},
        "json": _NOT_NULL,
        "observedAt": {"type": "string", "format": "date-time"},
        "unitCode": {"type": "string", "minLength": 1},
        "datasetId": URI,
        "objectType": {"type": "string"},
        "lang": {"type": "string"},
    },
}
ATTRIBUTE: Schema = {
    "description": "An attribute: normalized (an instance object, or a list of instances told "
    "apart by datasetId) or concise (the bare value)",
    "anyOf": [INSTANCE, {"type": "array", "items": INSTANCE, "minItems": 1}, _NOT_NULL],
}


def _entity(*, require_type: bool) -> Schema:
    return {
        "type": "object",
        "description": "An NGSI-LD entity in the normalized or concise form; every member "
        "other than id, type, scope and @context is an attribute (named as NAME describes)",
        "required": ["id", "type"] if require_type else [],
        "properties": {"id": URI, "type": NAMES, "scope": SCOPE},
        "additionalProperties": ATTRIBUTE,
    }


ENTITY = _entity(require_type=True)
ENTITY_FRAGMENT = _entity(require_type=False)
ENTITY_FRAGMENT["description"] = (
    "An entity fragment: its attributes, optionally type and scope (an id, if given, must be "
    "the one in the URL)"
)
ATTRIBUTES: Schema = {
    "type": "object",
    "description": "Attributes by name (normalized or concise)",
    "minProperties": 1,
    "additionalProperties": ATTRIBUTE,
}
ATTRIBUTE_FRAGMENT: Schema = {
    **INSTANCE,
    "description": "Members of one attribute to change (value, observedAt, sub-attributes ...)",
    "minProperties": 1,
}
MAX_BATCH = 10_000
ENTITY_IDS: Schema = {"type": "array", "items": URI, "minItems": 1, "maxItems": MAX_BATCH}
BATCH_ENTITIES: Schema = {"type": "array", "items": ENTITY, "minItems": 1, "maxItems": MAX_BATCH}
BATCH_FRAGMENTS: Schema = {
    "type": "array",
    "items": {**ENTITY_FRAGMENT, "required": ["id"]},
    "minItems": 1,
    "maxItems": MAX_BATCH,
}
ENTITY_SELECTOR: Schema = {
    "type": "object",
    "properties": {"id": URI, "idPattern": {"type": "string", "format": "regex"},
                   "type": {"type": "string", "description": "A type name or type expression"}},
}
GEOQUERY: Schema = {
    "type": "object",
    "required": ["georel", "geometry", "coordinates"],
    "properties": {
        "georel": {"type": "string", "description": "near;maxDistance==N, within, ..."},
        "geometry": {"type": "string", "enum": GEOMETRY["properties"]["type"]["enum"]},
        "coordinates": {"anyOf": [{"type": "array"}, {"type": "string"}]},
        "geoproperty": NAME,
    },
    "additionalProperties": False,
}
_NAME_LIST: Schema = {"anyOf": [{"type": "string"}, {"type": "array", "items": NAME}]}
QUERY: Schema = {
    "type": "object",
    "description": "The Query data type (NGSI-LD 5.2.23)",
    "required": ["type"],
    "properties": {
        "type": {"const": "Query"},
        "entities": {"type": "array", "items": ENTITY_SELECTOR},
        "attrs": _NAME_LIST,
        "pick": _NAME_LIST,
        "omit": _NAME_LIST,
        "q": {"type": "string"},
        "scopeQ": {"type": "string"},
        "geoQ": GEOQUERY,
        "lang": {"type": "string"},
    },
}
CONTEXT_DOCUMENT: Schema = {
    "type": "object",
    "required": ["@context"],
    "properties": {"@context": CONTEXT},
}

# Responses.
PROBLEM_DETAILS: Schema = {
    "type": "object",
    "description": "RFC 9457 problem details; `type` is an NGSI-LD error type URI",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
}
UPDATE_RESULT: Schema = {
    "type": "object",
    "description": "Which attributes were written and which were not, with the reason",
    "required": ["updated", "notUpdated"],
    "properties": {
        "updated": {"type": "array", "items": {"type": "string"}},
        "notUpdated": {"type": "array", "items": {
            "type": "object",
            "required": ["attributeName", "reason"],
            "properties": {"attributeName": {"type": "string"}, "reason": {"type": "string"}},
        }},
    },
}
BATCH_RESULT: Schema = {
    "type": "object",
    "description": "BatchOperationResult: the ids that succeeded and an error per failed one",
    "required": ["success", "errors"],
    "properties": {
        "success": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {
            "type": "object",
            "required": ["entityId", "error"],
            "properties": {"entityId": {"type": "string"}, "error": PROBLEM_DETAILS},
        }},
    },
}
ENTITY_OUT: Schema = {
    "type": "object",
    "description": "An entity as asked for (normalized, concise or keyValues; pick/omit may "
    "leave out id and type)",
    "properties": {"id": {"type": "string"},
                   "type": {"anyOf": [{"type": "string"}, {"type": "array"}]}},
}
FEATURE: Schema = {
    "type": "object",
    "required": ["type", "properties"],
    "properties": {"type": {"const": "Feature"}, "properties": {"type": "object"}},
}
FEATURE_COLLECTION: Schema = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {"type": {"const": "FeatureCollection"},
                   "features": {"type": "array", "items": FEATURE}},
}
ENTITY_IDS_OUT: Schema = {"type": "array", "items": {"type": "string"},
                          "description": "Ids of the entities created"}

# Discovery (/types, /attributes).
STRINGS: Schema = {"type": "array", "items": {"type": "string"}}
ENTITY_TYPE_LIST: Schema = {
    "type": "object",
    "required": ["id", "type", "typeList"],
    "properties": {"type": {"const": "EntityTypeList"}, "typeList": STRINGS},
}
ENTITY_TYPE: Schema = {
    "type": "object",
    "required": ["id", "type", "typeName", "attributeNames"],
    "properties": {"type": {"const": "EntityType"}, "attributeNames": STRINGS},
}
ENTITY_TYPE_INFO: Schema = {
    "type": "object",
    "required": ["id", "type", "typeName", "entityCount"],
    "properties": {"type": {"const": "EntityTypeInfo"},
                   "entityCount": {"type": "integer", "minimum": 0},
                   "attributeDetails": {"type": "array"}},
}
ATTRIBUTE_LIST: Schema = {
    "type": "object",
    "required": ["id", "type", "attributeList"],
    "properties": {"type": {"const": "AttributeList"}, "attributeList": STRINGS},
}
ATTRIBUTE_INFO: Schema = {
    "type": "object",
    "required": ["id", "type", "attributeName"],
    "properties": {"type": {"const": "Attribute"},
                   "attributeCount": {"type": "integer", "minimum": 0},
                   "attributeTypes": STRINGS, "typeNames": STRINGS},
}

_STATUS_TEXT = {
    400: "Bad request data or an invalid request (problem details)",
    404: "No such entity, attribute or tenant (problem details)",
    406: "Accept names no media type the hub can answer with (problem details)",
    409: "The entity already exists (problem details)",
    415: "Content-Type is neither application/json nor application/ld+json (problem details)",
    422: "The operation is not supported for this resource (problem details)",
    503: "An @context the request names cannot be loaded (problem details)",
}


def _with_context(schema: Schema) -> Schema:
    """The application/ld+json variant: the object (or each item of an array) carries @context."""
    out = copy.deepcopy(schema)
    target = out["items"] if out.get("type") == "array" else out
    target.setdefault("properties", {})["@context"] = CONTEXT
    target["required"] = [*(r for r in target.get("required", []) if r != "@context"), "@context"]
    if "anyOf" in target and "type" not in target:  # a concise attribute: only objects remain
        target["type"] = "object"
    return out


def link_header() -> dict[str, Any]:
    """`openapi_extra` documenting the Link header that gives an application/json request (or
    one without a body) its @context."""
    return {"parameters": [{
        "name": "Link",
        "in": "header",
        "required": False,
        "description": 'The @context: <URL>; rel="http://www.w3.org/ns/json-ld#context"; '
        'type="application/ld+json". Absent: the NGSI-LD core context.',
        "schema": {"type": "string"},
    }]}


TENANT_HEADER: dict[str, Any] = {
    "name": "NGSILD-Tenant",
    "in": "header",
    "required": False,
    "description": "Tenant; absent means the default tenant.",
    "schema": {"type": "string"},
}


def parameters(*params: dict[str, Any], link: bool = True) -> dict[str, Any]:
    """`openapi_extra` documenting parameters a handler reads from the request itself (see
    `api.query_params`): the tenant header, the given query parameters (the first of a name
    wins) and, when `link`, the Link header."""
    listed, seen = [TENANT_HEADER], set()
    for param in params:
        if param["name"] not in seen:
            seen.add(param["name"])
            listed.append(param)
    if link:
        listed += link_header()["parameters"]
    return {"parameters": listed}


def query_param(name: str, description: str, schema: Schema | None = None) -> dict[str, Any]:
    """One optional query parameter (a string unless `schema` says otherwise)."""
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def request_body(
    schema: Schema, description: str, *, ld: bool = True, link: bool = True
) -> dict[str, Any]:
    """`openapi_extra` for a route that reads a JSON body, its @context from the Link header
    (when `link`) or, in the ld+json form (when `ld`), from the body itself."""
    content = {JSON: {"schema": schema}}
    if ld:
        content[LD_JSON] = {"schema": _with_context(schema)}
    body = {"requestBody": {"required": True, "description": description, "content": content}}
    return {**body, **link_header()} if link else body


def created(description: str) -> dict[str, Any]:
    """A 201 answer whose Location header names the new resource."""
    return {"description": description, "headers": {"Location": {
        "description": "URL of the new resource", "schema": {"type": "string"}}}}


_OTHER_ERRORS = "Any other error, as problem details"


def problem(status: int, description: str | None = None) -> dict[str, Any]:
    return {"description": description or _STATUS_TEXT[status],
            "content": {PROBLEM: {"schema": PROBLEM_DETAILS}}}


def json_content(schema: Schema, description: str, *media: str) -> dict[str, Any]:
    return {"description": description,
            "content": {m: {"schema": schema} for m in (media or (JSON,))}}


def entity_content(
    schema: Schema, geo_schema: Schema | None, description: str, *, count: bool = False
) -> dict[str, Any]:
    """A 200 answer in JSON, JSON-LD (with @context inline) or, when `geo_schema`, GeoJSON;
    with `count`, the NGSILD-Results-Count header that count=true asks for."""
    content: dict[str, Any] = {JSON: {"schema": schema}, LD_JSON: {"schema": schema}}
    if geo_schema is not None:
        content[GEO_JSON] = {"schema": geo_schema}
    answer: dict[str, Any] = {"description": description, "content": content}
    if count:
        answer["headers"] = {"NGSILD-Results-Count": {
            "description": "How many entities match (with count=true)",
            "schema": {"type": "integer", "minimum": 0}}}
    return answer


def responses(*statuses: int, **others: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """Problem responses for `statuses`, other documented answers by `status_<code>`, and a
    problem `default` (which also keeps FastAPI from documenting its unused 422)."""
    out: dict[int | str, dict[str, Any]] = {
        int(key.removeprefix("status_")): value for key, value in others.items()
    }
    out.update({status: problem(status) for status in statuses})
    out["default"] = problem(500, _OTHER_ERRORS)
    return out


_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"


def problem_answers(schema: Schema) -> Schema:
    """The app's OpenAPI with its errors documented as the hub answers them: every error is a
    problem detail (`api.problems.install`), and a request FastAPI cannot validate is a 400
    BadRequestData. FastAPI documents a 422 with its own validation-error body on routes with
    parameters; that answer is never sent, so it becomes the 400 problem, and every operation
    gets the `default` problem answer. Changes `schema` in place (idempotent) and returns it."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            answers = operation.get("responses") if isinstance(operation, dict) else None
            if answers is None:
                continue
            auto = answers.get("422", {}).get("content", {}).get(JSON, {}).get("schema", {})
            if auto.get("$ref") == _FASTAPI_VALIDATION:
                del answers["422"]
                answers.setdefault("400", problem(400))
            answers.setdefault("default", problem(500, _OTHER_ERRORS))
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    return schema
