"""Query parameters shared by the entity and temporal APIs, parsed into domain objects.

Handlers declare `EntityFilter` (which entities) and `ViewParams` (how to show them); both are
documented in the OpenAPI schema and turn bad values into BadRequestData.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from cityhub.api.ldio import LdContext, LinkContext
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


def entity_filter(
    request: Request,
    ctx: LinkContext,
    type_: Annotated[str | None, Query(alias="type", description="Entity type(s) or a type "
                                       "expression: A,B | (A;B)|C")] = None,
    id_: Annotated[str | None, Query(alias="id", description="Comma-separated entity ids")] = None,
    id_pattern: Annotated[str | None, Query(alias="idPattern", description="Regex on ids")] = None,
    q: Annotated[str | None, Query(description="NGSI-LD query language")] = None,
    scope_q: Annotated[str | None, Query(alias="scopeQ", description="Scope query")] = None,
    attrs: Annotated[str | None, Query(description="Entities having any of these attributes; "
                                       "only these are shown")] = None,
    georel: Annotated[str | None, Query(description="near;maxDistance==N, within, ...")] = None,
    geometry: Annotated[str | None, Query(description="Point, Polygon, ...")] = None,
    coordinates: Annotated[str | None, Query(description="GeoJSON coordinates")] = None,
    geoproperty: Annotated[str | None, Query(description="GeoProperty to test (location)")] = None,
    limit: Annotated[int | None, Query(ge=0, description="Page size (default 20, at most the "
                                       "hub's max_limit)")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Entities to skip")] = 0,
    count: Annotated[bool, Query(description="Return NGSILD-Results-Count")] = False,
) -> EntityFilter:
    max_limit = request.app.state.settings.max_limit
    return EntityFilter(
        build_query(
            ctx.terms,
            type_=type_, id_=id_, id_pattern=id_pattern, q=q, scope_q=scope_q, attrs=attrs,
            georel=georel, geometry=geometry, coordinates=coordinates, geoproperty=geoproperty,
            limit=limit, offset=offset, count=count, max_limit=max_limit,
        ),
        ctx,
    )


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


def view_params(
    ctx: LinkContext,
    attrs: Annotated[str | None, Query(description="Attributes to show")] = None,
    pick: Annotated[str | None, Query(description="Members to show (attributes, id, type)")] = None,
    omit: Annotated[str | None, Query(description="Members to leave out")] = None,
    options: Annotated[str | None, Query(description="keyValues, concise, sysAttrs, ...")] = None,
    format_: Annotated[str | None, Query(alias="format", description="normalized, concise, "
                                         "keyValues (or simplified)")] = None,
    lang: Annotated[str | None, Query(description="Language for LanguageProperty values")] = None,
    geometry_property: Annotated[str | None, Query(alias="geometryProperty",
                                                   description="GeoJSON geometry")] = None,
) -> ViewParams:
    return make_view(ctx.terms, attrs=attrs, pick=pick, omit=omit, options=options,
                     format_=format_, lang=lang, geometry_property=geometry_property)


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


FilterDep = Annotated[EntityFilter, Depends(entity_filter)]
ViewDep = Annotated[ViewParams, Depends(view_params)]
