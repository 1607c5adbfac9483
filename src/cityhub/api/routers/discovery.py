"""Discovery: /types and /attributes (which entity types and attributes the tenant holds)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from cityhub.api import openapi as api
from cityhub.api.deps import ReadTenant, StoreDep
from cityhub.api.ldio import AcceptHeader, LinkContext, ld_response, negotiate
from cityhub.ngsild.errors import ResourceNotFound

router = APIRouter(tags=["discovery"])
Details = Annotated[bool, Query(description="Full objects instead of a list of names")]


@router.get(
    "/types",
    summary="Entity types available",
    responses=api.responses(400, 404, 406, status_200=api.entity_content(
        {"anyOf": [api.ENTITY_TYPE_LIST, {"type": "array", "items": api.ENTITY_TYPE}]}, None,
        "EntityTypeList, or EntityType objects with details=true")),
    openapi_extra=api.link_header(),
)
def list_types(
    tenant: ReadTenant, store: StoreDep, ctx: LinkContext, accept: AcceptHeader,
    details: Details = False,
) -> Response:
    media = negotiate(accept, geo=False)
    infos = store.types(tenant)
    compact = ctx.terms.compact_iri
    if details:
        body: object = [
            {"id": info.type, "type": "EntityType", "typeName": compact(info.type),
             "attributeNames": sorted(compact(a) for a in info.attributes)}
            for info in infos
        ]
    else:
        body = {"id": f"urn:ngsi-ld:EntityTypeList:{uuid.uuid4()}", "type": "EntityTypeList",
                "typeList": sorted(compact(info.type) for info in infos)}
    return ld_response(body, ctx, media)


@router.get(
    "/types/{type}",
    summary="Details of one entity type",
    responses=api.responses(400, 404, 406, status_200=api.entity_content(
        api.ENTITY_TYPE_INFO, None, "EntityTypeInfo")),
    openapi_extra=api.link_header(),
)
def type_info(
    type: str,
    tenant: ReadTenant, store: StoreDep, ctx: LinkContext, accept: AcceptHeader,
) -> Response:
    media = negotiate(accept, geo=False)
    iri = ctx.terms.expand_term(type)
    info = next((i for i in store.types(tenant) if i.type == iri), None)
    if info is None:
        raise ResourceNotFound(f"no entity of type {type}")
    compact = ctx.terms.compact_iri
    body = {
        "id": iri, "type": "EntityTypeInfo", "typeName": compact(iri),
        "entityCount": info.entity_count,
        "attributeDetails": [
            {"id": attr, "type": "Attribute", "attributeName": compact(attr),
             "attributeTypes": sorted(kinds)}
            for attr, kinds in sorted(info.attributes.items())
        ],
    }
    return ld_response(body, ctx, media)


@router.get(
    "/attributes",
    summary="Attributes available",
    responses=api.responses(400, 404, 406, status_200=api.entity_content(
        {"anyOf": [api.ATTRIBUTE_LIST, {"type": "array", "items": api.ATTRIBUTE_INFO}]}, None,
        "AttributeList, or Attribute objects with details=true")),
    openapi_extra=api.link_header(),
)
def list_attributes(
    tenant: ReadTenant, store: StoreDep, ctx: LinkContext, accept: AcceptHeader,
    details: Details = False,
) -> Response:
    media = negotiate(accept, geo=False)
    infos = store.attributes(tenant)
    compact = ctx.terms.compact_iri
    if details:
        body: object = [
            {"id": i.attribute, "type": "Attribute", "attributeName": compact(i.attribute),
             "attributeCount": i.entity_count, "attributeTypes": sorted(i.kinds),
             "typeNames": sorted(compact(t) for t in i.types)}
            for i in infos
        ]
    else:
        body = {"id": f"urn:ngsi-ld:AttributeList:{uuid.uuid4()}", "type": "AttributeList",
                "attributeList": sorted(compact(i.attribute) for i in infos)}
    return ld_response(body, ctx, media)


@router.get(
    "/attributes/{attrId}",
    summary="Details of one attribute",
    responses=api.responses(400, 404, 406, status_200=api.entity_content(
        api.ATTRIBUTE_INFO, None, "Attribute")),
    openapi_extra=api.link_header(),
)
def attribute_info(
    attrId: str,
    tenant: ReadTenant, store: StoreDep, ctx: LinkContext, accept: AcceptHeader,
) -> Response:
    media = negotiate(accept, geo=False)
    iri = ctx.terms.expand_term(attrId)
    info = next((i for i in store.attributes(tenant) if i.attribute == iri), None)
    if info is None:
        raise ResourceNotFound(f"no attribute {attrId}")
    compact = ctx.terms.compact_iri
    body = {"id": iri, "type": "Attribute", "attributeName": compact(iri),
            "attributeCount": info.entity_count, "attributeTypes": sorted(info.kinds),
            "typeNames": sorted(compact(t) for t in info.types)}
    return ld_response(body, ctx, media)
