"""/temporal: the temporal evolution of entities (ETSI GS CIM 009 §6.18-6.24): query and
retrieve history (normalized, temporalValues, aggregatedValues), add instances, delete history,
modify or delete one instance, and POST /temporal/entityOperations/query."""

from __future__ import annotations

import threading
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cityhub.api import openapi as api
from cityhub.api.auth import guarded_temporal
from cityhub.api.deps import ReadTenant, StoreDep, WriteTenant, budgeted_read
from cityhub.api.ldio import (
    AcceptHeader,
    LdContext,
    LinkContext,
    ld_response,
    negotiate,
    read_json,
    strip_context,
)
from cityhub.api.query_params import (
    FILTER_PARAMS,
    MAX_OFFSET,
    FilterDep,
    build_query,
    entity_selectors,
    split_list,
)
from cityhub.ngsild import geoquery
from cityhub.ngsild import temporal as tl
from cityhub.ngsild.errors import BadRequestData, ResourceNotFound
from cityhub.ngsild.model import Entity
from cityhub.ngsild.payload import check_entity_id, parse_attribute
from cityhub.store.port import EntityQuery, Store
from cityhub.store.temporal import TemporalStore

router = APIRouter(prefix="/temporal", tags=["temporal"])
_LOCK = threading.Lock()
_INSTANCES: api.Schema = {
    "description": "One instance, or an array of instances (several may share a datasetId: "
    "observedAt tells them apart in time)",
    "anyOf": [api.INSTANCE, {"type": "array", "items": api.INSTANCE, "minItems": 1}],
}
TEMPORAL_ENTITY: api.Schema = {
    "type": "object",
    "description": "An entity in the temporal representation (type is needed to create one)",
    "required": ["id"],
    "properties": {"id": api.URI, "type": api.NAMES, "scope": api.SCOPE},
    "propertyNames": api.NAME,
    "additionalProperties": _INSTANCES,
}
TEMPORAL_ATTRIBUTES: api.Schema = {
    "type": "object",
    "description": "Attribute instances to add, by attribute name",
    "minProperties": 1,
    "propertyNames": api.NAME,
    "additionalProperties": _INSTANCES,
}
TEMPORAL_Q: api.Schema = {
    "type": "object",
    "description": "The TemporalQuery data type (NGSI-LD 5.2.21)",
    "properties": {
        "timerel": {"enum": list(tl.TIMERELS)},
        "timeAt": {"type": "string", "format": "date-time"},
        "endTimeAt": {"type": "string", "format": "date-time"},
        "timeproperty": {"enum": list(tl.TIME_PROPERTIES)},
        "lastN": {"type": "integer", "minimum": 1},
        "aggrMethods": {"type": "array", "items": {"enum": list(tl.AGGR_METHODS)}},
        "aggrPeriodDuration": {"type": "string", "description": "ISO 8601 duration"},
    },
}
TEMPORAL_QUERY: api.Schema = {**api.QUERY, "properties": {**api.QUERY["properties"],
                                                          "temporalQ": TEMPORAL_Q}}
_ANSWER = "; 206 with Content-Range when instances were left out past the instance limit"
_ONE = api.entity_content(api.ENTITY_OUT, None, "The entity's temporal evolution" + _ANSWER)
_MANY = api.entity_content({"type": "array", "items": api.ENTITY_OUT}, None,
                           "The entities' temporal evolution" + _ANSWER)


async def get_temporal(request: Request) -> TemporalStore:
    """The app's history reader, made on first use around the app's store."""
    state = request.app.state
    with _LOCK:
        temporal: TemporalStore | None = getattr(state, "temporal", None)
        if temporal is None:
            temporal = state.temporal = TemporalStore(state.store, clock=state.service.clock)
    guarded: TemporalStore = guarded_temporal(request, temporal)  # the principal's view
    return guarded


async def temporal_query(
    timerel: Annotated[str | None, Query(description="before, after or between")] = None,
    time_at: Annotated[str | None, Query(alias="timeAt", description="ISO 8601 instant")] = None,
    end_time_at: Annotated[str | None, Query(alias="endTimeAt",
                                             description="End instant (timerel=between)")] = None,
    timeproperty: Annotated[str | None, Query(description="observedAt (default), modifiedAt, "
                                              "createdAt or deletedAt")] = None,
    last_n: Annotated[str | None, Query(alias="lastN",
                                        description="Only the last N instances")] = None,
    aggr_methods: Annotated[str | None, Query(alias="aggrMethods", description="totalCount, "
                                              "distinctCount, sum, avg, min, max, stddev, "
                                              "sumsq")] = None,
    aggr_period: Annotated[str | None, Query(alias="aggrPeriodDuration",
                                             description="ISO 8601 duration, e.g. PT1H")] = None,
    options: Annotated[str | None, Query(description="temporalValues, aggregatedValues, "
                                         "sysAttrs")] = None,
    format_: Annotated[str | None, Query(alias="format", description="normalized, "
                                         "temporalValues or aggregatedValues")] = None,
) -> tl.TemporalQuery:
    return tl.parse_temporal_query(
        timerel=timerel, time_at=time_at, end_time_at=end_time_at, timeproperty=timeproperty,
        last_n=last_n, aggr_methods=aggr_methods, aggr_period=aggr_period, options=options,
        format_=format_,
    )


TemporalDep = Annotated[TemporalStore, Depends(get_temporal)]
TemporalQueryDep = Annotated[tl.TemporalQuery, Depends(temporal_query)]


def _answer(
    entities: list[Entity], series: list[dict[str, tl.Series]], query: tl.TemporalQuery,
    ctx: LdContext, media: str, headers: dict[str, str],
) -> Response:
    """Render a list of temporal entities; a cut answer is 206 with its Content-Range."""
    clipped, page = tl.paginate(series, query)
    body = [tl.render_temporal_entity(e, s, ctx.terms, query)
            for e, s in zip(entities, clipped, strict=True)]
    if page is not None:
        headers = {**headers, "Content-Range": page.content_range()}
    return ld_response(body, ctx, media, status=206 if page else 200, headers=headers)


async def _query_entities(
    request: Request, tenant: str, store: Store, temporal: TemporalStore,
    entity_query: EntityQuery, query: tl.TemporalQuery, ctx: LdContext, media: str,
) -> Response:
    """The entities, then their histories: two reads, each tried on the event loop first
    (`budgeted_read`). Apart, because the guarded store records in the audit trail each
    entity it lets through: a history read stopped on the loop and run again must not read,
    and record, the entities a second time."""
    result = await budgeted_read(
        request, lambda deadline: store.query(tenant, entity_query, deadline=deadline))
    attrs = entity_query.attrs_any
    series = await budgeted_read(request, lambda deadline: [
        temporal.read(tenant, e, query, attrs, deadline=deadline) for e in result.entities])
    headers = {"NGSILD-Results-Count": str(result.count)} if result.count is not None else {}
    return _answer(result.entities, series, query, ctx, media, headers)


@router.get("/entities", summary="Query the temporal evolution of entities",
            responses=api.responses(400, 404, 406, status_200=_MANY, status_206=_MANY),
            openapi_extra={"parameters": list(FILTER_PARAMS)})
async def query_temporal(
    request: Request, tenant: ReadTenant, store: StoreDep, temporal: TemporalDep,
    filt: FilterDep, query: TemporalQueryDep, accept: AcceptHeader,
) -> Response:
    return await _query_entities(request, tenant, store, temporal, filt.query, query,
                                 filt.context, negotiate(accept, geo=False))


@router.post(
    "/entities",
    status_code=201,
    summary="Create a temporal entity or add instances to it",
    response_class=Response,
    responses=api.responses(400, 415, 503, status_201={
        "description": "Created; Location holds its temporal URL"}, status_204={
        "description": "The entity existed; the instances were added"}),
    openapi_extra=api.request_body(TEMPORAL_ENTITY, "The temporal entity"),
)
async def create_temporal(request: Request, tenant: WriteTenant, temporal: TemporalDep) -> Response:
    body, ctx = await read_json(request)
    parsed = tl.parse_temporal_entity(strip_context(body), ctx.terms)
    if not await run_in_threadpool(temporal.upsert, tenant, parsed):
        return Response(status_code=204)
    location = f"/ngsi-ld/v1/temporal/entities/{quote(parsed['id'], safe=':')}"
    return Response(status_code=201, headers={"Location": location})


@router.get("/entities/{entityId}", summary="Retrieve the temporal evolution of an entity",
            responses=api.responses(400, 404, 406, status_200=_ONE, status_206=_ONE))
async def retrieve_temporal(
    entityId: str, request: Request,
    tenant: ReadTenant, store: StoreDep, temporal: TemporalDep, ctx: LinkContext,
    query: TemporalQueryDep, accept: AcceptHeader,
    attrs: Annotated[str | None, Query(description="Attributes to show")] = None,
) -> Response:
    media = negotiate(accept, geo=False)
    entity_id = check_entity_id(entityId)
    wanted = None
    if attrs is not None:
        wanted = {ctx.terms.expand_term(a) for a in split_list(attrs, "attrs") or []}

    # The entity first (the guarded store records the read), then its history, which may be
    # stopped on the event loop and read again (see `_query_entities`).
    entity = await store.get_async(tenant, entity_id)
    if entity is None:
        raise ResourceNotFound(f"entity {entity_id} does not exist", instance=entity_id)

    def history(deadline: float | None) -> dict[str, tl.Series]:
        if wanted is not None and not wanted & set(
                temporal.attributes(tenant, entity_id, deadline=deadline)):
            raise ResourceNotFound(f"entity {entity_id} has no history of {attrs}",
                                   instance=entity_id)
        return temporal.read(tenant, entity, query, wanted, deadline=deadline)

    series = await budgeted_read(request, history)
    clipped, page = tl.paginate([series], query)
    body = tl.render_temporal_entity(entity, clipped[0], ctx.terms, query)
    headers = {"Content-Range": page.content_range()} if page else {}
    return ld_response(body, ctx, media, status=206 if page else 200, headers=headers)


@router.delete("/entities/{entityId}", status_code=204, summary="Delete a temporal entity",
               response_class=Response, responses=api.responses(400, 404))
def delete_temporal(
    entityId: str, tenant: ReadTenant, temporal: TemporalDep
) -> Response:
    temporal.delete_entity(tenant, check_entity_id(entityId))
    return Response(status_code=204)


@router.post("/entities/{entityId}/attrs", status_code=204,
             summary="Add attribute instances to a temporal entity", response_class=Response,
             responses=api.responses(400, 404, 415, 503),
             openapi_extra=api.request_body(TEMPORAL_ATTRIBUTES, "The instances to add"))
async def append_temporal_attrs(
    entityId: str, request: Request, tenant: WriteTenant, temporal: TemporalDep
) -> Response:
    body, ctx = await read_json(request)
    body = strip_context(body)
    if not isinstance(body, dict) or not body:
        raise BadRequestData("expected a JSON object of attributes")
    attrs = tl.parse_temporal_attributes(body, ctx.terms)
    await run_in_threadpool(temporal.upsert, tenant, {"id": check_entity_id(entityId),
                                                      "attrs": attrs}, must_exist=True)
    return Response(status_code=204)


@router.delete("/entities/{entityId}/attrs/{attrId}", status_code=204,
               summary="Delete an attribute and its history", response_class=Response,
               responses=api.responses(400, 404))
def delete_temporal_attr(
    entityId: str,
    attrId: str,
    tenant: ReadTenant, temporal: TemporalDep, ctx: LinkContext,
    dataset_id: Annotated[str | None, Query(alias="datasetId")] = None,
    delete_all: Annotated[bool, Query(alias="deleteAll")] = False,
) -> Response:
    temporal.delete_attribute(tenant, check_entity_id(entityId), ctx.terms.expand_term(attrId),
                              dataset_id, delete_all)
    return Response(status_code=204)


@router.patch("/entities/{entityId}/attrs/{attrId}/{instanceId}", status_code=204,
              summary="Modify one recorded attribute instance", response_class=Response,
              responses=api.responses(400, 404, 415, 503),
              openapi_extra=api.request_body(api.ATTRIBUTE_FRAGMENT, "The instance's new members"))
async def modify_temporal_instance(
    entityId: str, attrId: str, instanceId: str,
    request: Request, tenant: WriteTenant, temporal: TemporalDep,
) -> Response:
    body, ctx = await read_json(request)
    iri = ctx.terms.expand_term(attrId)
    instances = parse_attribute(iri, strip_context(body), ctx.terms)
    if len(instances) != 1:
        raise BadRequestData("expected one attribute instance")
    await run_in_threadpool(temporal.modify_instance, tenant, check_entity_id(entityId), iri,
                            instanceId, instances[0])
    return Response(status_code=204)


@router.delete("/entities/{entityId}/attrs/{attrId}/{instanceId}", status_code=204,
               summary="Delete one recorded attribute instance", response_class=Response,
               responses=api.responses(400, 404))
def delete_temporal_instance(
    entityId: str, attrId: str, instanceId: str,
    tenant: ReadTenant, temporal: TemporalDep, ctx: LinkContext,
) -> Response:
    temporal.delete_instance(tenant, check_entity_id(entityId), ctx.terms.expand_term(attrId),
                             instanceId)
    return Response(status_code=204)


@router.post("/entityOperations/query", summary="Query temporal evolution with a Query object",
             responses=api.responses(400, 404, 406, 415, 503, status_200=_MANY,
                                     status_206=_MANY),
             openapi_extra=api.request_body(TEMPORAL_QUERY, "The Query object with temporalQ"))
async def post_temporal_query(
    request: Request, tenant: ReadTenant, store: StoreDep, temporal: TemporalDep,
    accept: AcceptHeader,
    limit: Annotated[int | None, Query(ge=0)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    count: bool = False,
    options: str | None = None,
    format_: Annotated[str | None, Query(alias="format")] = None,
) -> Response:
    body, ctx = await read_json(request)
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise BadRequestData('expected a Query object: {"type": "Query", ...}')
    media = negotiate(accept, geo=False)
    temporal_q = body.get("temporalQ") or {}
    if not isinstance(temporal_q, dict):
        raise BadRequestData("temporalQ must be an object")
    types, ids, pattern = entity_selectors(body.get("entities"))
    geo_q = body.get("geoQ")
    entity_query = build_query(
        ctx.terms,
        type_=types, id_=ids, id_pattern=pattern,
        q=body.get("q"),
        scope_q=body.get("scopeQ"),
        attrs=body.get("attrs"),
        geo_query=geoquery.geoquery_from_json(geo_q) if geo_q is not None else None,
        limit=limit, offset=offset, count=count,
        max_limit=request.app.state.settings.max_limit,
    )
    query = tl.parse_temporal_query(
        timerel=temporal_q.get("timerel"), time_at=temporal_q.get("timeAt"),
        end_time_at=temporal_q.get("endTimeAt"), timeproperty=temporal_q.get("timeproperty"),
        last_n=temporal_q.get("lastN"), aggr_methods=temporal_q.get("aggrMethods"),
        aggr_period=temporal_q.get("aggrPeriodDuration"), options=options, format_=format_,
    )
    return await _query_entities(request, tenant, store, temporal, entity_query, query, ctx,
                                 media)
