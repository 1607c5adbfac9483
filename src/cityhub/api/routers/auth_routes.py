"""Identity routes: the built-in issuer's JWKS and OpenID metadata (public), `whoami`, and
disabling, enabling or removing an account (stewards)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from starlette.responses import Response

from cityhub.api.auth import AccessDep, PrincipalDep, current_principal, get_access, public_base
from cityhub.api.ldio import json_response
from cityhub.api.service_access import allow, identity_resource
from cityhub.governance.events import AuditEvent
from cityhub.governance.issuer import IssuerError
from cityhub.ngsild.errors import ResourceNotFound

router = APIRouter(tags=["identity"])


@router.get("/auth/jwks.json", summary="Public keys of the built-in token issuer (JWKS)")
def jwks(access: AccessDep) -> Response:
    return json_response(access.issuer.jwks())


@router.get("/.well-known/openid-configuration", summary="OpenID metadata of the built-in issuer")
def openid_configuration(request: Request, access: AccessDep) -> Response:
    return json_response(dict(access.issuer.discovery(public_base(request))))


@router.get("/auth/whoami", summary="The principal the bearer token names",
            responses={401: {"description": "No valid bearer token"}})
def whoami(principal: PrincipalDep) -> Response:
    return json_response({
        "subject": principal.subject, "issuer": principal.issuer, "kind": principal.kind.value,
        "department": principal.department, "roles": sorted(principal.roles),
        "clearance": principal.clearance.value,
    })


_SUBJECT = PathParam(pattern=r"^[^\s/]{1,256}$")
_ACCOUNT_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not a steward"}, 404: {"description": "No such account"}}


def _account_change(request: Request, subject: str, change: str) -> Response:
    """Decided as `administer` on the identity store (the steward rule); the account's tokens
    are refused from the next request on in this process, within the account cache's TTL in
    other processes."""
    allow(request, "administer", identity_resource())
    accounts = get_access(request).accounts
    try:
        getattr(accounts, change)(subject)
    except IssuerError as error:
        raise ResourceNotFound(str(error)) from None
    principal = current_principal(request)
    request.app.state.audit.record(AuditEvent(
        actor=principal.key, action=f"account.{change}", subject=subject,
        department=principal.department or None, decision="allow"))
    return Response(status_code=204)


@router.post("/auth/accounts/{subject}/disable", status_code=204,
             summary="Disable an account of the built-in issuer: its tokens are refused at once",
             responses=_ACCOUNT_ERRORS)
def disable_account(request: Request, subject: Annotated[str, _SUBJECT]) -> Response:
    return _account_change(request, subject, "disable")


@router.post("/auth/accounts/{subject}/enable", status_code=204,
             summary="Enable a disabled account again",
             responses=_ACCOUNT_ERRORS)
def enable_account(request: Request, subject: Annotated[str, _SUBJECT]) -> Response:
    return _account_change(request, subject, "enable")


@router.delete("/auth/accounts/{subject}", status_code=204,
               summary="Remove an account: its tokens are refused at once",
               responses=_ACCOUNT_ERRORS)
def remove_account(request: Request, subject: Annotated[str, _SUBJECT]) -> Response:
    return _account_change(request, subject, "remove")
