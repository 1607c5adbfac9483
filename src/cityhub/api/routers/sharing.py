"""/sharing: the data-sharing workflow. A department asks for a dataset (purpose, attributes,
area, duration); the owner approves, possibly narrowing, or refuses with a reason; grants are
listed and revoked; the turnaround of requests is reported against the 3-day goal."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from cityhub.api.auth import AccessDep, AuditDep, PrincipalDep, request_guard
from cityhub.api.deps import WriteTenant
from cityhub.api.ldio import json_response
from cityhub.api.routers.catalogue import NAME_PATTERN, core_terms
from cityhub.governance.events import AuditEvent
from cityhub.governance.guard import resource_for
from cityhub.governance.sharing import (
    Area,
    Grant,
    SharingError,
    SharingRequest,
    turnaround,
)
from cityhub.ngsild.errors import BadRequestData, ResourceNotFound
from cityhub.ngsild.terms import Terms

router = APIRouter(prefix="/sharing", tags=["sharing"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request"}, 403: {"description": "Not allowed"},
    404: {"description": "Unknown dataset, request or grant"},
    409: {"description": "Already decided"}}
BBox = Annotated[list[Annotated[float, Field(ge=-180, le=180)]], Field(
    min_length=4, max_length=4, description="[min lon, min lat, max lon, max lat]")]
MAX_DURATION = timedelta(days=3660)  # ten years: far beyond any grant, far from overflow
Duration = Annotated[timedelta, Field(gt=timedelta(0), le=MAX_DURATION,
                                      description="ISO 8601 duration, e.g. P30D")]
Names = Annotated[list[Annotated[str, Field(pattern=NAME_PATTERN)]], Field(max_length=500)]


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: Annotated[str, Field(min_length=1, max_length=128)]
    purpose: Annotated[str, Field(min_length=1, max_length=500)]
    attributes: Names = []
    area: BBox | None = None
    duration: Duration


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attributes: Names | None = None
    area: BBox | None = None
    duration: Duration | None = None


class RefuseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


def _area(box: list[float] | None) -> Area | None:
    if box is None:
        return None
    if box[0] > box[2] or box[1] > box[3]:
        raise BadRequestData("an area is [min lon, min lat, max lon, max lat]")
    return (box[0], box[1], box[2], box[3])


def _request_json(r: SharingRequest, terms: Terms) -> dict[str, Any]:
    return {
        "id": r.id, "dataset": r.dataset, "owner": r.owner, "department": r.department,
        "requester": r.requester, "purpose": r.purpose,
        "attributes": [terms.compact_iri(a) for a in r.attributes],
        "area": list(r.area) if r.area else None, "durationSeconds": r.duration_s,
        "status": r.status.value, "askedAt": r.asked_at.isoformat(),
        "decidedAt": r.decided_at.isoformat() if r.decided_at else None,
        "decidedBy": r.decided_by, "reason": r.reason, "grant": r.grant,
    }


def _grant_json(g: Grant, terms: Terms) -> dict[str, Any]:
    return {
        "id": g.id, "dataset": g.dataset, "department": g.department, "purpose": g.purpose,
        "attributes": [terms.compact_iri(a) for a in g.attributes],
        "area": list(g.area) if g.area else None, "grantedAt": g.granted_at.isoformat(),
        "expiresAt": g.expires_at.isoformat(), "grantedBy": g.granted_by, "request": g.request,
        "revokedAt": g.revoked_at.isoformat() if g.revoked_at else None,
    }


def _authorize(request: Request, tenant: str, dataset_id: str, action: str) -> None:
    access = request.app.state.access
    dataset = access.catalogue.get(dataset_id, tenant)
    if dataset is None:
        raise ResourceNotFound(f"no dataset {dataset_id} in the catalogue")
    guard = request_guard(request)
    if guard is None:
        return
    resource = resource_for(tenant, dataset, dataset.entity_type)
    if not guard.decide(action, resource).allowed:
        raise guard.denial(resource, action)


def _workflow_error(error: SharingError) -> BadRequestData:
    return BadRequestData(str(error))


@router.post("/requests", status_code=201, summary="Ask for a dataset", responses=_ERRORS)
def ask(body: AskIn, request: Request, tenant: WriteTenant, access: AccessDep,
        principal: PrincipalDep, audit: AuditDep) -> Response:
    _authorize(request, tenant, body.dataset, "request")
    dataset = access.catalogue.get(body.dataset, tenant)
    assert dataset is not None
    terms = core_terms(request)
    try:
        asked = access.sharing.ask(
            tenant=tenant, dataset=dataset.id, owner=dataset.owner,
            department=principal.department, requester=principal.key, purpose=body.purpose,
            attributes=tuple(terms.expand_term(a) for a in body.attributes),
            area=_area(body.area), duration=body.duration)
    except SharingError as error:
        raise _workflow_error(error) from None
    audit.record(AuditEvent(actor=principal.key, action="grant.request", subject=asked.id,
                            tenant=tenant, department=principal.department or None,
                            dataset=dataset.id, purpose=asked.purpose))
    return json_response(_request_json(asked, terms), status=201,
                         headers={"Location": f"/sharing/requests/{asked.id}"})


@router.get("/requests", summary="Sharing requests (yours, your department's, or all for "
            "stewards)")
def list_requests(request: Request, tenant: WriteTenant, access: AccessDep,
                  principal: PrincipalDep) -> Response:
    terms = core_terms(request)
    everything = "steward" in principal.roles
    items = [r for r in access.sharing.requests(tenant) if everything
             or principal.department in (r.department, r.owner)]
    return json_response([_request_json(r, terms) for r in items])


def _existing(access: Any, request_id: str) -> SharingRequest:
    found: SharingRequest | None = access.sharing.get_request(request_id)
    if found is None:
        raise ResourceNotFound(f"no sharing request {request_id}")
    return found


@router.post("/requests/{requestId}/approve", summary="Approve (possibly narrowing)",
             responses=_ERRORS)
def approve(requestId: str, body: ApproveIn, request: Request, tenant: WriteTenant,
            access: AccessDep, principal: PrincipalDep, audit: AuditDep) -> Response:
    asked = _existing(access, requestId)
    _authorize(request, asked.tenant, asked.dataset, "decide")
    terms = core_terms(request)
    try:
        decided, grant = access.sharing.approve(
            requestId, decided_by=principal.key,
            attributes=None if body.attributes is None else tuple(
                terms.expand_term(a) for a in body.attributes),
            area=_area(body.area), duration=body.duration)
    except SharingError as error:
        raise _workflow_error(error) from None
    audit.record(AuditEvent(
        actor=principal.key, action="grant.approve", subject=requestId, tenant=asked.tenant,
        department=principal.department or None, dataset=asked.dataset, purpose=asked.purpose,
        grant=grant.id, decision="approve",
        detail={"attributes": list(grant.attributes), "expires": grant.expires_at.isoformat()}))
    return json_response({"request": _request_json(decided, terms),
                          "grant": _grant_json(grant, terms)})


@router.post("/requests/{requestId}/refuse", summary="Refuse with a reason", responses=_ERRORS)
def refuse(requestId: str, body: RefuseIn, request: Request, tenant: WriteTenant,
           access: AccessDep, principal: PrincipalDep, audit: AuditDep) -> Response:
    asked = _existing(access, requestId)
    _authorize(request, asked.tenant, asked.dataset, "decide")
    try:
        decided = access.sharing.refuse(requestId, decided_by=principal.key, reason=body.reason)
    except SharingError as error:
        raise _workflow_error(error) from None
    audit.record(AuditEvent(
        actor=principal.key, action="grant.refuse", subject=requestId, tenant=asked.tenant,
        department=principal.department or None, dataset=asked.dataset, purpose=asked.purpose,
        decision="refuse", detail={"reason": decided.reason}))
    return json_response(_request_json(decided, core_terms(request)))


@router.get("/grants", summary="Grants held by or given by your department (all for stewards)")
def list_grants(request: Request, tenant: WriteTenant, access: AccessDep,
                principal: PrincipalDep) -> Response:
    terms = core_terms(request)
    everything = "steward" in principal.roles
    owned = {d.id for d in access.catalogue.datasets(tenant)
             if d.owner == principal.department}
    items = [g for g in access.sharing.grants(tenant)
             if everything or g.department == principal.department or g.dataset in owned]
    return json_response([_grant_json(g, terms) for g in items])


@router.post("/grants/{grantId}/revoke", summary="Revoke a grant at once", responses=_ERRORS)
def revoke(grantId: str, request: Request, tenant: WriteTenant, access: AccessDep,
           principal: PrincipalDep, audit: AuditDep) -> Response:
    grant = access.sharing.get_grant(grantId)
    if grant is None:
        raise ResourceNotFound(f"no grant {grantId}")
    _authorize(request, grant.tenant, grant.dataset, "decide")
    revoked = access.sharing.revoke(grantId)
    audit.record(AuditEvent(actor=principal.key, action="grant.revoke", subject=grantId,
                            tenant=grant.tenant, department=principal.department or None,
                            dataset=grant.dataset, grant=grantId, decision="revoke"))
    return json_response(_grant_json(revoked, core_terms(request)))


@router.get("/turnaround", summary="How long sharing requests wait for a decision "
            "(median, p90, share within the 3-day goal)")
def report_turnaround(tenant: WriteTenant, access: AccessDep) -> Response:
    figures = turnaround(access.sharing.requests(tenant))
    return json_response({
        "decided": figures.decided, "pending": figures.pending,
        "medianHours": figures.median_hours, "p90Hours": figures.p90_hours,
        "withinGoal": figures.within_goal, "goalHours": figures.goal_hours,
    })
