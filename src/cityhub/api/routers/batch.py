"""/entityOperations: batch create, upsert, update, merge, delete, and POST query."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cityhub.api import openapi as api
from cityhub.api.deps import ReadTenant, ServiceDep, StoreDep, WriteTenant, budgeted_read
from cityhub.api.ldio import (
    AcceptHeader,
    LdContext,
    json_response,
    ld_response,
    negotiate,
    read_json,
)
from cityhub.api.query_params import (
    MAX_OFFSET,
    build_query,
    entity_selectors,
    make_view,
    parse_options,
)
from cityhub.api.routers.entities import render_list
from cityhub.ngsild import geoquery
from cityhub.ngsild.errors import BadRequestData, NgsiLdError
from cityhub.ngsild.model import Entity
from cityhub.ngsild.payload import check_entity_id, parse_entity
from cityhub.store.service import BatchOutcome

router = APIRouter(prefix="/entityOperations", tags=["batch"])
MAX_BATCH = api.MAX_BATCH
_PARTIAL = api.json_content(api.BATCH_RESULT, "Some entities failed (BatchOperationResult)")


def _error_body(entity_id: str, error: NgsiLdError) -> dict[str, Any]:
    return {
        "entityId": entity_id,
        "error": {"type": error.type_uri, "title": error.title, "status": error.status,
                  "detail": error.detail},
    }


def _parse_batch(
    body: Any, ctx: LdContext, *, require_type: bool, allow_null: bool = False
) -> tuple[list[Entity], list[tuple[str, NgsiLdError]]]:
    """Parse each entity on its own: one bad entity is reported, the others still go through."""
    if not isinstance(body, list) or not body:
        raise BadRequestData("expected a non-empty JSON array of entities")
    if len(body) > MAX_BATCH:
        raise BadRequestData(f"a batch holds at most {MAX_BATCH} entities")
    entities, errors = [], []
    for item in body:
        item_context = item.get("@context") if isinstance(item, dict) else None
        terms = ctx.terms
        if item_context is not None and ctx.value is None:
            raise BadRequestData("@context inside batch entities needs application/ld+json")
        try:  # parse_entity leaves "@context" out, as every other core member
            entities.append(parse_entity(item, terms, require_type=require_type,
                                         allow_null=allow_null))
        except NgsiLdError as error:
            raw_id = item.get("id") if isinstance(item, dict) else None
            errors.append((str(raw_id) if raw_id is not None else "", error))
    return entities, errors


def _outcome_response(
    outcome: BatchOutcome, parse_errors: list[tuple[str, NgsiLdError]], created_status: bool
) -> Response:
    errors = parse_errors + outcome.errors
    if errors:
        return json_response(
            {"success": outcome.success, "errors": [_error_body(i, e) for i, e in errors]},
            status=207,
        )
    if created_status:
        return json_response(outcome.success, status=201)
    return Response(status_code=204)


@router.post(
    "/create",
    summary="Batch create",
    status_code=201,
    responses=api.responses(400, 415, 503, status_201=api.json_content(
        api.ENTITY_IDS_OUT, "Every entity was created"), status_207=_PARTIAL),
    openapi_extra=api.request_body(api.BATCH_ENTITIES, "The entities to create"),
)
async def batch_create(request: Request, tenant: WriteTenant, service: ServiceDep) -> Response:
    body, ctx = await read_json(request)
    entities, errors = _parse_batch(body, ctx, require_type=True)
    outcome = await run_in_threadpool(service.batch, tenant, "create", entities)
    return _outcome_response(outcome, errors, created_status=True)


@router.post(
    "/upsert",
    summary="Batch upsert",
    status_code=201,
    responses=api.responses(400, 415, 503, status_201=api.json_content(
        api.ENTITY_IDS_OUT, "Some entities were created (their ids)"), status_204={
        "description": "Every entity existed and was updated"}, status_207=_PARTIAL),
    openapi_extra=api.request_body(api.BATCH_ENTITIES, "The entities to create or update"),
)
async def batch_upsert(
    request: Request,
    tenant: WriteTenant,
    service: ServiceDep,
    options: Annotated[str | None, Query(description="replace (default) or update")] = None,
) -> Response:
    body, ctx = await read_json(request)
    opts = parse_options(options)
    if {"replace", "update"} <= opts:
        raise BadRequestData("options replace and update exclude each other")
    entities, errors = _parse_batch(body, ctx, require_type=True)
    outcome = await run_in_threadpool(
        service.batch, tenant, "upsert", entities, replace="update" not in opts
    )
    created_any = bool(outcome.created)
    return _outcome_response(outcome, errors, created_status=created_any)


@router.post(
    "/update",
    summary="Batch update",
    status_code=204,
    responses=api.responses(400, 415, 503, status_207=_PARTIAL),
    openapi_extra=api.request_body(api.BATCH_FRAGMENTS, "Attributes to update, per entity"),
)
async def batch_update(
    request: Request,
    tenant: WriteTenant,
    service: ServiceDep,
    options: Annotated[str | None, Query(description="noOverwrite")] = None,
) -> Response:
    body, ctx = await read_json(request)
    entities, errors = _parse_batch(body, ctx, require_type=False)
    overwrite = "noOverwrite" not in parse_options(options)
    outcome = await run_in_threadpool(service.batch, tenant, "update", entities,
                                      overwrite=overwrite)
    return _outcome_response(outcome, errors, created_status=False)


@router.post(
    "/merge",
    summary="Batch merge",
    status_code=204,
    responses=api.responses(400, 415, 503, status_207=_PARTIAL),
    openapi_extra=api.request_body(api.BATCH_FRAGMENTS, "Attributes to merge, per entity"),
)
async def batch_merge(request: Request, tenant: WriteTenant, service: ServiceDep) -> Response:
    body, ctx = await read_json(request)
    entities, errors = _parse_batch(body, ctx, require_type=False, allow_null=True)
    outcome = await run_in_threadpool(service.batch, tenant, "merge", entities)
    return _outcome_response(outcome, errors, created_status=False)


@router.post(
    "/delete",
    summary="Batch delete",
    status_code=204,
    responses=api.responses(400, 415, status_207=_PARTIAL),
    openapi_extra=api.request_body(
        api.ENTITY_IDS, "Ids of the entities to delete", ld=False, link=False),
)
async def batch_delete(request: Request, tenant: WriteTenant, service: ServiceDep) -> Response:
    body, _ctx = await read_json(request)
    if not isinstance(body, list) or not body or not all(isinstance(i, str) for i in body):
        raise BadRequestData("expected a non-empty JSON array of entity ids")
    for entity_id in body:
        check_entity_id(entity_id)
    outcome = await run_in_threadpool(service.delete_many, tenant, body)
    return _outcome_response(outcome, [], created_status=False)


@router.post(
    "/query",
    summary="Query entities with a Query object",
    responses=api.responses(400, 404, 406, 415, 503, status_200=api.entity_content(
        {"type": "array", "items": api.ENTITY_OUT}, None, "The entities selected", count=True)),
    openapi_extra=api.request_body(api.QUERY, "The Query object"),
)
async def post_query(
    request: Request,
    tenant: ReadTenant,
    store: StoreDep,
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
    media = negotiate(accept)
    types, ids, pattern = entity_selectors(body.get("entities"))
    geo_q = body.get("geoQ")
    query = build_query(
        ctx.terms,
        type_=types,
        id_=ids,
        id_pattern=pattern,
        q=body.get("q"),
        scope_q=body.get("scopeQ"),
        attrs=body.get("attrs"),
        geo_query=geoquery.geoquery_from_json(geo_q) if geo_q is not None else None,
        limit=limit,
        offset=offset,
        count=count,
        max_limit=request.app.state.settings.max_limit,
    )
    view = make_view(ctx.terms, attrs=body.get("attrs"), pick=body.get("pick"),
                     omit=body.get("omit"), options=options, format_=format_,
                     lang=body.get("lang"))
    result = await budgeted_read(
        request, lambda deadline: store.query(tenant, query, deadline=deadline))
    headers = {"NGSILD-Results-Count": str(result.count)} if result.count is not None else {}
    return ld_response(render_list(result.entities, ctx, view, media), ctx, media, headers=headers)
