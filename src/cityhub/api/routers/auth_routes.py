"""Identity routes: the built-in issuer's JWKS and OpenID metadata (public), and `whoami`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from cityhub.api.auth import AccessDep, PrincipalDep, public_base
from cityhub.api.ldio import json_response

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
