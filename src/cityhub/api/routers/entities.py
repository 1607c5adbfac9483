"""/entities: create, query, retrieve, replace, merge, delete; attributes append/update/delete.

Retrieval, query and partial attribute update are the hot paths: they declare no FastAPI
dependencies (they read tenant, @context, Accept and query parameters from the request in one
pass, documented with `openapi.parameters`). A retrieval reads the store from the event loop
(`Store.get_async`: inline on SQLite, awaited on PostgreSQL); a query runs inline on SQLite
until a small budget is spent and then in the thread pool (`deps.budgeted_read`: the client
chooses its size); writes go to the thread pool.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cityhub.api import openapi as api
from cityhub.api.deps import (
    ReadTenant,
    ServiceDep,
    WriteTenant,
    budgeted_read,
    read_tenant,
    service_of,
    store_of,
    write_tenant,
)
from cityhub.api.ldio import (
    GEO_JSON,
    LdContext,
    LinkContext,
    context_from_link,
    ld_response,
    negotiate,
    read_json,
    strip_context,
)
from cityhub.api.query_params import (
    FILTER_PARAMS,
    VIEW_PARAMS,
    ViewParams,
    entity_filter,
    parse_options,
    view_params,
)
from cityhub.ngsild import geojson
from cityhub.ngsild.errors import BadRequestData, ResourceNotFound
from cityhub.ngsild.model import Entity
from cityhub.ngsild.operations import UpdateResult
from cityhub.ngsild.payload import check_entity_id, parse_attribute, parse_attributes, parse_entity
from cityhub.ngsild.render import render_entity
from cityhub.store.service import EntityService

router = APIRouter(prefix="/entities", tags=["entities"])
EntityId = Annotated[str, "the entity id (a URI)"]


def render_list(
    entities: list[Entity], ctx: LdContext, view: ViewParams, media: str
) -> Any:
    rendered = [render_entity(e, ctx.terms, view.render) for e in entities]
    if media == GEO_JSON:
        return geojson.feature_collection(rendered, view.geometry_property, ctx.value)
    return rendered


def render_one(entity: Entity, ctx: LdContext, view: ViewParams, media: str) -> Any:
    rendered = render_entity(entity, ctx.terms, view.render)
    if media == GEO_JSON:
        return geojson.feature(rendered, view.geometry_property, ctx.value)
    return rendered


def update_result_response(result: UpdateResult, ctx: LdContext) -> Response:
    """204 when every attribute was written, else 207 with the spec's UpdateResult."""
    if not result.not_updated:
        return Response(status_code=204)
    body = {
        "updated": [ctx.terms.compact_iri(a) for a in dict.fromkeys(result.updated)],
        "notUpdated": [
            {"attributeName": ctx.terms.compact_iri(a), "reason": reason}
            for a, reason in result.not_updated
        ],
    }
    return ld_response(body, ctx, "application/json", status=207)


@router.post(
    "",
    status_code=201,
    summary="Create an entity",
    response_class=Response,
    responses=api.responses(400, 409, 415, 503, status_201=api.created("Created")),
    openapi_extra=api.request_body(api.ENTITY, "The entity (normalized or concise form)"),
)
async def create_entity(request: Request, tenant: WriteTenant, service: ServiceDep) -> Response:
    body, ctx = await read_json(request)
    entity = parse_entity(strip_context(body), ctx.terms)
    await run_in_threadpool(service.create, tenant, entity)
    location = f"/ngsi-ld/v1/entities/{quote(entity['id'], safe=':')}"
    return Response(status_code=201, headers={"Location": location})


@router.get(
    "",
    summary="Query entities",
    responses=api.responses(400, 404, 406, status_200=api.entity_content(
        {"type": "array", "items": api.ENTITY_OUT}, api.FEATURE_COLLECTION,
        "The entities selected", count=True)),
    openapi_extra=api.parameters(*FILTER_PARAMS, *VIEW_PARAMS),
)
async def query_entities(request: Request) -> Response:
    tenant = read_tenant(request)
    ctx = await context_from_link(request)
    filt = entity_filter(request, ctx)
    view = view_params(request, ctx.terms)
    media = negotiate(request.headers.get("accept"))
    store = store_of(request)
    result = await budgeted_read(
        request, lambda deadline: store.query(tenant, filt.query, deadline=deadline))
    headers = {}
    if result.count is not None:
        headers["NGSILD-Results-Count"] = str(result.count)
    data = render_list(result.entities, ctx, view, media)
    return ld_response(data, ctx, media, headers=headers)


@router.get(
    "/{entityId}",
    summary="Retrieve an entity",
    responses=api.responses(400, 404, 406, status_200=api.entity_content(
        api.ENTITY_OUT, api.FEATURE, "The entity")),
    openapi_extra=api.parameters(*VIEW_PARAMS),
)
async def retrieve_entity(entityId: EntityId, request: Request) -> Response:
    tenant = read_tenant(request)
    ctx = await context_from_link(request)
    view = view_params(request, ctx.terms)
    media = negotiate(request.headers.get("accept"))
    entity = await store_of(request).get_async(tenant, check_entity_id(entityId))
    if entity is None:
        raise ResourceNotFound(f"entity {entityId} does not exist", instance=entityId)
    if view.render.attrs is not None and not any(a in entity["attrs"] for a in view.render.attrs):
        raise ResourceNotFound(f"entity {entityId} has none of the requested attributes")
    return ld_response(render_one(entity, ctx, view, media), ctx, media)


@router.put(
    "/{entityId}",
    status_code=204,
    summary="Replace an entity",
    responses=api.responses(400, 404, 415, 503),
    openapi_extra=api.request_body(api.ENTITY_FRAGMENT, "The entity's new content"),
)
async def replace_entity(
    entityId: EntityId, request: Request, tenant: WriteTenant, service: ServiceDep
) -> Response:
    body, ctx = await read_json(request)
    body = strip_context(body)
    if isinstance(body, dict):
        body.setdefault("id", entityId)
        if body["id"] != entityId:
            raise BadRequestData("the id in the body differs from the id in the URL")
    await run_in_threadpool(service.replace, tenant,
                            parse_entity(body, ctx.terms, require_type=False))
    return Response(status_code=204)


@router.patch(
    "/{entityId}",
    status_code=204,
    summary="Merge-patch an entity",
    responses=api.responses(400, 404, 415, 503),
    openapi_extra=api.request_body(
        api.ENTITY_FRAGMENT, "Attributes to merge; urn:ngsi-ld:null deletes one"),
)
async def merge_entity(
    entityId: EntityId, request: Request, tenant: WriteTenant, service: ServiceDep
) -> Response:
    body, ctx = await read_json(request)
    body = strip_context(body)
    if isinstance(body, dict):
        body.setdefault("id", entityId)
        if body["id"] != entityId:
            raise BadRequestData("the id in the body differs from the id in the URL")
    patch = parse_entity(body, ctx.terms, require_type=False, allow_null=True)
    await run_in_threadpool(service.merge, tenant, check_entity_id(entityId), patch)
    return Response(status_code=204)


@router.delete(
    "/{entityId}", status_code=204, summary="Delete an entity", responses=api.responses(400, 404)
)
def delete_entity(
    entityId: EntityId, tenant: ReadTenant, service: ServiceDep
) -> Response:
    service.delete(tenant, check_entity_id(entityId))
    return Response(status_code=204)


async def _attributes_body(request: Request) -> tuple[dict[str, Any], LdContext]:
    body, ctx = await read_json(request)
    body = strip_context(body)
    if not isinstance(body, dict) or not body:
        raise BadRequestData("expected a JSON object of attributes")
    return body, ctx


@router.post(
    "/{entityId}/attrs",
    summary="Append attributes",
    status_code=204,
    responses=api.responses(400, 404, 415, 503, status_207=api.json_content(
        api.UPDATE_RESULT, "Some attributes were not written (noOverwrite)")),
    openapi_extra=api.request_body(api.ATTRIBUTES, "Attributes to add"),
)
async def append_attrs(
    entityId: EntityId,
    request: Request,
    tenant: WriteTenant,
    service: ServiceDep,
    options: Annotated[str | None, Query(description="noOverwrite")] = None,
) -> Response:
    body, ctx = await _attributes_body(request)
    overwrite = "noOverwrite" not in parse_options(options)
    attrs = parse_attributes(body, ctx.terms)
    result = await run_in_threadpool(service.append_attrs, tenant, check_entity_id(entityId),
                                     attrs, overwrite=overwrite)
    return update_result_response(result, ctx)


@router.patch(
    "/{entityId}/attrs",
    summary="Update existing attributes",
    status_code=204,
    responses=api.responses(400, 404, 415, 503, status_207=api.json_content(
        api.UPDATE_RESULT, "Some attributes do not exist and were not written")),
    openapi_extra=api.request_body(api.ATTRIBUTES, "Attributes to update"),
)
async def update_attrs(
    entityId: EntityId, request: Request, tenant: WriteTenant, service: ServiceDep
) -> Response:
    body, ctx = await _attributes_body(request)
    args = (tenant, check_entity_id(entityId), parse_attributes(body, ctx.terms))
    if type(service) is EntityService and hasattr(service.store, "modify_async"):
        result = await service.update_attrs_async(*args)  # no thread hand-off: group_commit.py
    else:  # a guarded service (authentication on) checks the policy first, synchronously
        result = await run_in_threadpool(service.update_attrs, *args)
    return update_result_response(result, ctx)


@router.patch(
    "/{entityId}/attrs/{attrId}",
    status_code=204,
    summary="Partial attribute update",
    responses=api.responses(400, 404, 415, 503),
    openapi_extra={
        **api.request_body(api.ATTRIBUTE_FRAGMENT, "Members of the attribute to change",
                           link=False),
        **api.parameters(),
    },
)
async def partial_update_attr(entityId: EntityId, attrId: str, request: Request) -> Response:
    tenant = write_tenant(request)
    body, ctx = await read_json(request)
    iri = ctx.terms.expand_term(attrId)
    fragment = strip_context(body)
    if not isinstance(fragment, dict) or not fragment:
        raise BadRequestData("expected a JSON object with the attribute's new members")
    if "type" not in fragment and not {"value", "object", "languageMap", "valueList",
                                       "objectList", "vocab", "json"} & fragment.keys():
        raise BadRequestData("a partial update needs a value (or object, languageMap, ...)")
    service = service_of(request)
    args = (tenant, check_entity_id(entityId), iri, parse_attribute(iri, fragment, ctx.terms))
    if type(service) is EntityService and hasattr(service.store, "modify_async"):
        await service.partial_update_attr_async(*args)  # no thread hand-off: group_commit.py
    else:  # a guarded service (authentication on) checks the policy first, synchronously
        await run_in_threadpool(service.partial_update_attr, *args)
    return Response(status_code=204)


@router.put(
    "/{entityId}/attrs/{attrId}",
    status_code=204,
    summary="Replace an attribute",
    responses=api.responses(400, 404, 415, 503),
    openapi_extra=api.request_body(api.ATTRIBUTE, "The attribute's new content"),
)
async def replace_attr(
    entityId: EntityId,
    attrId: str,
    request: Request,
    tenant: WriteTenant,
    service: ServiceDep,
) -> Response:
    body, ctx = await read_json(request)
    iri = ctx.terms.expand_term(attrId)
    await run_in_threadpool(service.replace_attr, tenant, check_entity_id(entityId), iri,
                            parse_attribute(iri, strip_context(body), ctx.terms))
    return Response(status_code=204)


@router.delete(
    "/{entityId}/attrs/{attrId}",
    status_code=204,
    summary="Delete an attribute",
    responses=api.responses(400, 404),
    openapi_extra=api.link_header(),
)
def delete_attr(
    entityId: EntityId,
    attrId: str,
    tenant: ReadTenant,
    service: ServiceDep,
    ctx: LinkContext,
    dataset_id: Annotated[str | None, Query(alias="datasetId")] = None,
    delete_all: Annotated[bool, Query(alias="deleteAll")] = False,
) -> Response:
    service.delete_attr(tenant, check_entity_id(entityId), ctx.terms.expand_term(attrId),
                        dataset_id, delete_all)
    return Response(status_code=204)
