"""/catalogue: datasets (list, read, create or replace, delete), the DCAT-AP export, the
data-sharing responsibility list and the data export of a dataset (read through the guard).
Changes need the `administer` permission (stewards)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from cityhub.api.auth import (
    AccessDep,
    OptionalPrincipalDep,
    current_principal,
    public_base,
    request_guard,
)
from cityhub.api.deps import WriteTenant
from cityhub.api.governance_state import whole_store
from cityhub.api.ldio import json_response
from cityhub.governance import export, observations
from cityhub.governance.catalogue import dataset_to_doc
from cityhub.governance.datasets import Dataset, Tier
from cityhub.governance.dcat import dcat_catalogue, iso_duration
from cityhub.governance.duties import responsibility_list
from cityhub.governance.events import AuditEvent
from cityhub.governance.export import MEDIA_TYPES, Format
from cityhub.governance.guard import resource_for
from cityhub.governance.identity import TIER_LEVEL
from cityhub.ngsild.errors import ResourceNotFound
from cityhub.ngsild.model import LOCATION, Entity
from cityhub.ngsild.terms import Terms

router = APIRouter(prefix="/catalogue", tags=["catalogue"])
_ID = r"^[A-Za-z0-9_\-.:]{1,128}$"
NAME_PATTERN = r"^[^\s<>\"{}|\\^`]{1,256}$"


class DatasetIn(BaseModel):
    """A dataset record; names are short terms of the core @context or full IRIs."""

    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=200)]
    entityType: Annotated[str, Field(pattern=NAME_PATTERN)]
    owner: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
    tier: Tier
    scope: Annotated[str | None, Field(pattern=r"^/[^\s]{0,255}$")] = None
    description: Annotated[str, Field(max_length=4000)] = ""
    updateFrequency: Annotated[timedelta | None, Field(
        gt=timedelta(0), description="ISO 8601 duration, e.g. PT15M")] = None
    licence: Annotated[str | None, Field(max_length=500)] = None
    attributes: Annotated[list[Annotated[str, Field(pattern=NAME_PATTERN)]], Field(
        max_length=500)] = []


def core_terms(request: Request) -> Terms:
    terms: Terms = request.app.state.contexts_resolver.term_map(None)
    return terms


def dataset_json(dataset: Dataset, terms: Terms) -> dict[str, Any]:
    doc = dataset_to_doc(dataset)
    return {
        "id": doc["id"], "title": doc["title"],
        "entityType": terms.compact_iri(dataset.entity_type), "owner": doc["owner"],
        "tier": doc["tier"], "scope": doc["scope"], "description": doc["description"],
        "updateFrequency": iso_duration(dataset.update_frequency)
        if dataset.update_frequency is not None else None,
        "licence": doc["licence"],
        "attributes": [terms.compact_iri(a) for a in dataset.attributes],
    }


def _administer(request: Request, tenant: str, dataset: Dataset) -> None:
    guard = request_guard(request)
    if guard is None:
        return
    resource = resource_for(tenant, dataset, dataset.entity_type)
    if not guard.decide("administer", resource).allowed:
        raise guard.denial(resource, "administer")


@router.get("/datasets", summary="The catalogued datasets of the tenant")
def list_datasets(request: Request, tenant: WriteTenant, access: AccessDep) -> Response:
    terms = core_terms(request)
    return json_response([dataset_json(d, terms) for d in access.catalogue.datasets(tenant)])


@router.get("/datasets/{datasetId}", summary="One dataset",
            responses={404: {"description": "No such dataset"}})
def get_dataset(datasetId: str, request: Request, tenant: WriteTenant, access: AccessDep
                ) -> Response:
    dataset = access.catalogue.get(datasetId, tenant)
    if dataset is None:
        raise ResourceNotFound(f"no dataset {datasetId}")
    return json_response(dataset_json(dataset, core_terms(request)))


@router.put("/datasets/{datasetId}", status_code=204, summary="Create or replace a dataset",
            response_class=Response,
            responses={400: {"description": "Bad record"}, 403: {"description": "Not allowed"}})
def put_dataset(
    datasetId: Annotated[str, PathParam(pattern=_ID, description="1-128 letters, digits, "
                                        "'_', '-', '.' or ':'")],
    body: DatasetIn, request: Request, tenant: WriteTenant, access: AccessDep,
) -> Response:
    terms = core_terms(request)
    dataset = Dataset(
        id=datasetId, title=body.title, entity_type=terms.expand_term(body.entityType),
        owner=body.owner, tier=body.tier, scope=body.scope, description=body.description,
        update_frequency=body.updateFrequency, licence=body.licence, tenant=tenant,
        attributes=tuple(terms.expand_term(a) for a in body.attributes))
    previous = access.catalogue.get(datasetId, tenant)
    if previous is not None:
        _administer(request, tenant, previous)
    _administer(request, tenant, dataset)
    access.catalogue.put(dataset)
    return Response(status_code=204)


@router.delete("/datasets/{datasetId}", status_code=204, summary="Remove a dataset",
               response_class=Response, responses={404: {"description": "No such dataset"}})
def delete_dataset(datasetId: str, request: Request, tenant: WriteTenant, access: AccessDep
                   ) -> Response:
    dataset = access.catalogue.get(datasetId, tenant)
    if dataset is None:
        raise ResourceNotFound(f"no dataset {datasetId}")
    _administer(request, tenant, dataset)
    access.catalogue.delete(datasetId, tenant)
    return Response(status_code=204)


class _JsonLd(Response):
    media_type = "application/ld+json"  # also what the OpenAPI documents for /dcat


@router.get("/dcat", response_class=_JsonLd,
            responses={200: {"description": "A dcat:Catalog", "content": {
                _JsonLd.media_type: {"schema": {"type": "object"}}}}},
            summary="The catalogue as DCAT-AP JSON-LD (public datasets only without a token)")
def dcat(request: Request, tenant: WriteTenant, access: AccessDep,
         principal: OptionalPrincipalDep) -> Response:
    datasets = access.catalogue.datasets(tenant)
    if principal is None:
        datasets = [d for d in datasets if d.tier is Tier.PUBLIC]
    else:
        datasets = [d for d in datasets
                    if TIER_LEVEL[d.tier] <= max(principal.clearance_level, 1)]
    body = dcat_catalogue(datasets, public_base(request))
    return _JsonLd(json_response(body).body)


@router.get("/duties", summary="The data-sharing responsibility list: each department's "
            "datasets, how fresh they must be, and whether that is met")
def duties(request: Request, tenant: WriteTenant, access: AccessDep) -> Response:
    # freshness is computed from all stored data
    listing = responsibility_list(whole_store(request), access.catalogue.datasets(tenant))
    body = {
        department: [{
            "dataset": d.dataset, "title": d.title, "tier": d.tier,
            "updateFrequency": iso_duration(d.update_frequency)
            if d.update_frequency is not None else None,
            "entities": d.entities, "newest": d.newest.isoformat() if d.newest else None,
            "met": d.met, "status": d.status,
        } for d in items]
        for department, items in listing.items()
    }
    return json_response(body)


@router.get("/datasets/{datasetId}/export",
            summary="Export the dataset's entities (CSV, GeoJSON or NGSI-LD JSON-LD), streamed, "
            "through the same guard as every read: minimised to a grant, audited",
            responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}},
                       403: {"description": "Neither readable nor granted"},
                       404: {"description": "No such dataset"}})
def export_dataset(
    datasetId: Annotated[str, PathParam(pattern=_ID)], request: Request, tenant: WriteTenant,
    access: AccessDep,
    format: Annotated[Format, Query(description="csv, geojson or jsonld")] = "geojson",
) -> Response:
    dataset = access.catalogue.get(datasetId, tenant)
    if dataset is None:
        raise ResourceNotFound(f"no dataset {datasetId}")
    guard = request_guard(request)
    principal = current_principal(request)
    granted: frozenset[str] | None = None
    grant = None
    if guard is not None:  # decided before the first byte: 403 instead of an empty file
        resource = resource_for(tenant, dataset, dataset.entity_type)
        view = guard.view(resource)
        if view is None:
            raise guard.denial(resource, "read")
        granted, grant = view.attributes, view.grant
    columns = [a for a in dataset.attributes if a != LOCATION
               and (granted is None or a in granted)]
    entities = observations.entities(whole_store(request), dataset)
    if guard is not None:  # each entity minimised to the grant (attributes, area), audited
        entities = (seen for entity in entities
                    if (seen := guard.readable(tenant, entity)) is not None)
    counted = _Counted(entities)

    def stream() -> Iterator[str]:
        try:
            yield from export.render(format, counted, columns, core_terms(request))
        finally:  # also when the client goes away: what was sent is on the record
            request.app.state.audit.record(AuditEvent(
                actor=principal.key, action="dataset.export", subject=dataset.id,
                tenant=tenant, department=principal.department or None, dataset=dataset.id,
                purpose=guard.context.purpose or None if guard else None,
                grant=grant.id if grant else None, decision="allow",
                detail={"format": format, "entities": counted.count,
                        "attributes": sorted(granted) if granted is not None else "all"}))

    filename = f"{dataset.id}.{'json' if format == 'jsonld' else format}"
    return StreamingResponse(stream(), media_type=MEDIA_TYPES[format], headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


class _Counted:
    """Counts the entities that pass through (for the export's audit event)."""

    def __init__(self, entities: Iterator[Entity]) -> None:
        self.entities = entities
        self.count = 0

    def __iter__(self) -> Iterator[Entity]:
        for entity in self.entities:
            self.count += 1
            yield entity
