"""Query parameters shared by the entity and temporal APIs, parsed into domain objects.

Handlers get `EntityFilter` (which entities) and `ViewParams` (how to show them) by reading the
request's query string here in one pass (`entity_filter`, `view_params`): FastAPI validating
a dozen declared parameters one by one cost more than the rest of a retrieval. The parameters
are documented in the OpenAPI schema all the same (`FILTER_PARAMS`, `VIEW_PARAMS` with
`openapi.parameters`), and bad values become BadRequestData.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import QueryParams

from cityhub.api.ldio import LdContext, LinkContext
from cityhub.api.openapi import query_param
from cityhub.ngsild import geoquery
from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query import expand, parse_q, parse_scope_q, parse_type_expr
from cityhub.ngsild.render import Form, RenderOptions
from cityhub.ngsild.terms import Terms
from cityhub.store.port import EntityQuery

_FORMATS: dict[str, Form] = {
    "keyValues": "keyValues",
    "simplified": "keyValues",
    "concise": "concise",
    "normalized": "normalized",
}
_OPTIONS = {"keyValues", "simplified", "concise", "normalized", "sysAttrs", "noOverwrite",
            "replace", "update"}
# The largest offset both SQL back-ends take (a signed 64-bit integer).
MAX_OFFSET = 2**63 - 1


def split_list(raw: str | None, what: str) -> list[str] | None:
    if raw is None:
        return None
    items = [item.strip() for item in raw.split(",")]
    if not all(items):
        raise BadRequestData(f"{what} has an empty item: {raw!r}")
    return items


def _text(value: object, what: str) -> str | None:
    """A string member of a Query object (GET parameters always are strings)."""
    if value is None or isinstance(value, str):
        return value
    raise BadRequestData(f"{what} must be a string, got {type(value).__name__}")


def _names(value: object, what: str) -> list[str] | None:
    """A comma-separated string or a JSON array of non-empty strings."""
    if value is None or isinstance(value, str):
        return split_list(value, what)
    if isinstance(value, list) and all(isinstance(item, str) and item for item in value):
        return list(value)
    raise BadRequestData(f"{what} must be a comma-separated string or an array of names")


def entity_selectors(raw: object) -> tuple[str | None, list[str] | None, str | None]:
    """The `entities` member of a Query object -> (type, ids, idPattern) for `build_query`."""
    if raw is None:
        return None, None, None
    if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
        raise BadRequestData("entities must be an array of EntitySelectors")
    types: list[str] = []
    ids: list[str] = []
    patterns: list[str] = []
    for selector in raw:
        for member, found in (("type", types), ("id", ids), ("idPattern", patterns)):
            value = selector.get(member)
            if value is not None and (not isinstance(value, str) or not value):
                raise BadRequestData(f"EntitySelector {member} must be a non-empty string")
            if value is not None:
                found.append(value)
    return (",".join(types) or None, ids or None,
            "|".join(f"(?:{p})" for p in patterns) or None)


def parse_options(raw: str | None) -> set[str]:
    options = set(split_list(raw, "options") or [])
    unknown = options - _OPTIONS
    if unknown:
        raise BadRequestData(f"unknown options: {', '.join(sorted(unknown))}")
    return options


@dataclass(frozen=True)
class EntityFilter:
    """Which entities a query selects (before paging)."""

    query: EntityQuery
    context: LdContext


FILTER_PARAMS = (
    query_param("type", "Entity type(s) or a type expression: A,B | (A;B)|C"),
    query_param("id", "Comma-separated entity ids"),
    query_param("idPattern", "Regex on ids"),
    query_param("q", "NGSI-LD query language"),
    query_param("scopeQ", "Scope query"),
    query_param("attrs", "Entities having any of these attributes; only these are shown"),
    query_param("georel", "near;maxDistance==N, within, ..."),
    query_param("geometry", "Point, Polygon, ..."),
    query_param("coordinates", "GeoJSON coordinates"),
    query_param("geoproperty", "GeoProperty to test (location)"),
    query_param("limit", "Page size (default 20, at most the hub's max_limit)",
                {"type": "integer", "minimum": 0}),
    query_param("offset", "Entities to skip",
                {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}),
    query_param("count", "Return NGSILD-Results-Count", {"type": "boolean", "default": False}),
)
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


def _integer(params: QueryParams, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestData(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise BadRequestData(f"{name} must not be negative")
    return value


def _boolean(params: QueryParams, name: str) -> bool:
    raw = params.get(name)
    if raw is None or raw.lower() in _FALSE:
        return False
    if raw.lower() in _TRUE:
        return True
    raise BadRequestData(f"{name} must be true or false, got {raw!r}")


def entity_filter(request: Request, ctx: LdContext) -> EntityFilter:
    """The filter of GET /entities (and of the temporal query) from the query string."""
    params = request.query_params
    get = params.get
    return EntityFilter(
        build_query(
            ctx.terms,
            type_=get("type"), id_=get("id"), id_pattern=get("idPattern"), q=get("q"),
            scope_q=get("scopeQ"), attrs=get("attrs"), georel=get("georel"),
            geometry=get("geometry"), coordinates=get("coordinates"),
            geoproperty=get("geoproperty"), limit=_integer(params, "limit"),
            offset=_integer(params, "offset") or 0, count=_boolean(params, "count"),
            max_limit=request.app.state.settings.max_limit,
        ),
        ctx,
    )


async def filter_dependency(request: Request, ctx: LinkContext) -> EntityFilter:
    """`entity_filter` as a dependency; the route documents FILTER_PARAMS itself."""
    return entity_filter(request, ctx)


def build_query(
    terms: Terms,
    *,
    type_: str | None = None,
    id_: str | list[str] | None = None,
    id_pattern: str | None = None,
    q: str | None = None,
    scope_q: str | None = None,
    attrs: str | list[str] | None = None,
    georel: str | None = None,
    geometry: str | None = None,
    coordinates: Any = None,
    geoproperty: str | None = None,
    geo_query: Any = None,
    limit: int | None = None,
    offset: int = 0,
    count: bool = False,
    max_limit: int = 1000,
) -> EntityQuery:
    """Parse and expand every filter; shared by GET /entities and POST /entityOperations/query."""
    if limit is None:
        limit = 20
    if limit > max_limit:
        raise BadRequestData(f"limit {limit} is above the maximum {max_limit}")
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    if not 0 <= offset <= MAX_OFFSET:
        raise BadRequestData(f"offset must be between 0 and {MAX_OFFSET}")
    ids = _names(id_, "id")
    type_, id_pattern = _text(type_, "type"), _text(id_pattern, "idPattern")
    q, scope_q = _text(q, "q"), _text(scope_q, "scopeQ")
    if id_pattern is not None:
        import re

        try:
            re.compile(id_pattern)
        except re.error as error:
            raise BadRequestData(f"idPattern is not a valid regular expression: {error}") from None
    attr_list = _names(attrs, "attrs")
    geoq = geo_query if geo_query is not None else geoquery.parse_geoquery(
        georel, geometry, coordinates, geoproperty
    )
    geo_property = None
    if geoq is not None:
        geo_property = terms.expand_term(geoq.geoproperty or "location")
    return EntityQuery(
        ids=tuple(ids) if ids is not None else None,
        id_pattern=id_pattern,
        types=expand(parse_type_expr(type_), terms.expand_term) if type_ else None,
        q=expand(parse_q(q), terms.expand_term) if q else None,
        scope=parse_scope_q(scope_q) if scope_q else None,
        attrs_any=tuple(terms.expand_term(a) for a in attr_list) if attr_list else None,
        geo=geoq,
        geo_property=geo_property,
        limit=limit,
        offset=offset,
        count=count,
    )


@dataclass(frozen=True)
class ViewParams:
    """How entities are shown: form, sysAttrs, attribute selection, language."""

    options: set[str]
    render: RenderOptions
    geometry_property: str


VIEW_PARAMS = (
    query_param("attrs", "Attributes to show"),
    query_param("pick", "Members to show (attributes, id, type)"),
    query_param("omit", "Members to leave out"),
    query_param("options", "keyValues, concise, sysAttrs, ..."),
    query_param("format", "normalized, concise, keyValues (or simplified)"),
    query_param("lang", "Language for LanguageProperty values"),
    query_param("geometryProperty", "GeoJSON geometry"),
)


def view_params(request: Request, terms: Terms) -> ViewParams:
    """How to show entities, from the query string (VIEW_PARAMS)."""
    get = request.query_params.get
    return make_view(terms, attrs=get("attrs"), pick=get("pick"), omit=get("omit"),
                     options=get("options"), format_=get("format"), lang=get("lang"),
                     geometry_property=get("geometryProperty"))


def make_view(
    terms: Terms,
    *,
    attrs: str | list[str] | None = None,
    pick: str | list[str] | None = None,
    omit: str | list[str] | None = None,
    options: str | None = None,
    format_: str | None = None,
    lang: str | None = None,
    geometry_property: str | None = None,
) -> ViewParams:
    option_set = parse_options(options)
    form: Form = "normalized"
    if format_ is not None:
        if format_ not in _FORMATS:
            raise BadRequestData(f"unknown format {format_!r}")
        form = _FORMATS[format_]
    elif option_set & {"keyValues", "simplified"}:
        form = "keyValues"
    elif "concise" in option_set:
        form = "concise"
    attr_list = _names(attrs, "attrs")
    pick_list = _names(pick, "pick")
    omit_list = _names(omit, "omit") or []
    lang = _text(lang, "lang")
    if pick_list is not None and omit:
        raise BadRequestData("pick and omit cannot be used together")
    shown: set[str] | None = None
    if attr_list is not None:
        shown = {terms.expand_term(a) for a in attr_list}
    if pick_list is not None:
        picked = {terms.expand_term(a) for a in pick_list if a not in ("id", "type")}
        shown = picked if shown is None else shown & picked
    render = RenderOptions(
        form=form,
        sys_attrs="sysAttrs" in option_set,
        attrs=shown,
        omit=frozenset(terms.expand_term(a) for a in omit_list if a not in ("id", "type")),
        lang=lang,
        show_id=("id" in pick_list if pick_list is not None else "id" not in omit_list),
        show_type=("type" in pick_list if pick_list is not None else "type" not in omit_list),
    )
    return ViewParams(option_set, render, geometry_property or "location")


FilterDep = Annotated[EntityFilter, Depends(filter_dependency)]
