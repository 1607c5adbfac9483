"""Authentication and access in the request path.

- `AuthMiddleware` (pure ASGI): every route needs a bearer JWT except those declared public;
  a refusal is a 401 problem with a WWW-Authenticate header saying why.
- `start_access(app)` (from the lifespan) builds the verifier, the built-in issuer, the policy
  decision point, the catalogue, the sharing store and the audit sink on `app.state`.
- Dependencies: `PrincipalDep` (who asks), and `guarded_store`, `guarded_service`,
  `guarded_temporal`, `owned_subscriptions`, which wrap the hub's objects in the request
  principal's `Guard` when authentication is on (and return them bare when it is off).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
import httpx
from fastapi import Depends, FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from cityhub.api.problems import problem
from cityhub.config import Settings
from cityhub.devices.hub import DeviceHub, UnknownDevice
from cityhub.governance.accounts import AccountStatus
from cityhub.governance.catalogue import SqlCatalogue
from cityhub.governance.events import AuditSink
from cityhub.governance.guard import Guard
from cityhub.governance.guarded import GuardedService, GuardedStore, GuardedTemporal
from cityhub.governance.identity import LOCAL_OPERATOR, Principal, PrincipalKind
from cityhub.governance.issuer import BuiltinIssuer
from cityhub.governance.jwks import KeySet, file_loader
from cityhub.governance.policy import DEFAULT_POLICY_DIR, AccessContext, PolicyDecisionPoint
from cityhub.governance.posture import NO_DEVICE, Posture, posture_of
from cityhub.governance.sharing import SharingStore
from cityhub.governance.subscribers import (
    OwnedSubscriptions,
    SubscriptionOwners,
    notification_gate,
)
from cityhub.governance.tokens import AuthenticationFailed, TokenVerifier, TrustedIssuer
from cityhub.store.port import Store
from cityhub.store.service import EntityService
from cityhub.store.subscriptions import SubscriptionStore
from cityhub.store.temporal import TemporalStore

log = logging.getLogger(__name__)
PURPOSE_HEADER = "Cityhub-Purpose"
DEVICE_HEADER = "Cityhub-Device"  # a request speaking for a device (its posture is decided on)
PUBLIC_PATHS = frozenset({
    "/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
    "/auth/jwks.json", "/.well-known/openid-configuration", "/catalogue/dcat",
    "/", "/auth/login", "/ops/view", "/ops/summary", "/ops/events",  # the operations page
})
PUBLIC_PREFIXES = ("/static/",)  # the page's scripts and styles
# Routes whose callers prove themselves with a credential of their own instead of a JWT:
# devices post measurements with their device token, checked against the device registry.
DEVICE_CREDENTIAL_PREFIX = "/ingest/v1/devices/"
# Edge agents forward batches and sync the registry with the edge token (CITYHUB_EDGE_TOKEN)
# when one is set; without it they need a JWT like any client.
EDGE_CREDENTIAL_PATHS = frozenset({"/ingest/v1/batch", "/devices/v1/registry"})
# Public routes that still read a token when one is sent (to show more to a known caller).
# (The operations page's reads are cut to the caller's view: public data for anonymous ones.)
OPTIONAL_AUTH_PATHS = frozenset({"/catalogue/dcat", "/ops/view", "/ops/summary", "/ops/events"})
LOOPBACK = ("127.", "::1", "localhost")


def is_loopback(host: str) -> bool:
    return host.startswith(LOOPBACK) or host == "[::1]"


@dataclass
class Access:
    """What the access side keeps per hub process."""

    verifier: TokenVerifier
    issuer: BuiltinIssuer
    pdp: PolicyDecisionPoint
    catalogue: SqlCatalogue
    sharing: SharingStore
    subscribers: SubscriptionOwners
    accounts: AccountStatus


def _url_loader(url: str) -> Any:
    def load() -> Any:
        response = httpx.get(url, timeout=5.0)
        response.raise_for_status()
        return response.json()

    return load


def build_access(settings: Settings, store: Any) -> Access:
    issuer = BuiltinIssuer(store.db, settings.auth_issuer, settings.auth_audience)
    if settings.auth_builtin_issuer:
        issuer.ensure_key()  # its JWKS is never empty
    trusted = []
    if settings.auth_builtin_issuer:
        trusted.append(TrustedIssuer(issuer.issuer, settings.auth_audience,
                                     KeySet(issuer.jwks, min_refresh_s=1.0, name="builtin")))
    for name, source in settings.auth_issuers.items():
        loader = (_url_loader(source) if source.startswith(("https://", "http://"))
                  else file_loader(Path(source)))
        trusted.append(TrustedIssuer(name, settings.auth_audience, KeySet(loader, name=name)))
    return Access(
        verifier=TokenVerifier(trusted), issuer=issuer,
        pdp=PolicyDecisionPoint(settings.policy_dir or DEFAULT_POLICY_DIR),
        catalogue=SqlCatalogue(store.db), sharing=SharingStore(store.db),
        subscribers=SubscriptionOwners(store.db), accounts=AccountStatus(issuer),
    )


def start_access(app: FastAPI) -> None:
    """Called from the lifespan once `app.state.store` and `app.state.audit` are set."""
    settings: Settings = app.state.settings
    app.state.access = build_access(settings, app.state.store)
    access: Access = app.state.access
    if settings.auth == "enabled":  # notifications carry what their owner may read
        app.state.notification_gate = notification_gate(
            access.subscribers, access.pdp, access.catalogue, access.sharing, app.state.audit)
    else:
        log.warning("event=auth_disabled WARNING=every request runs as %s with full access; "
                    "for loopback experiments only", LOCAL_OPERATOR.subject)


class AuthMiddleware:
    """Authenticates each HTTP request; the principal goes to `scope["state"]["principal"]`."""

    def __init__(self, app: ASGIApp, hub: FastAPI, cache_size: int = 1024) -> None:
        self.app = app
        self.hub = hub
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        token = self._header(scope)
        if (path in PUBLIC_PATHS and (token is None or path not in OPTIONAL_AUTH_PATHS)) or \
                path.startswith((DEVICE_CREDENTIAL_PREFIX, *PUBLIC_PREFIXES)) or \
                self._edge_credential(path):
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._verify(self._bearer(token))
        except AuthenticationFailed as failure:
            response = problem(401, "Unauthorized", "Unauthorized", failure.reason, path)
            response.headers["WWW-Authenticate"] = (
                f'Bearer realm="cityhub", error="{failure.error}", '
                f'error_description="{failure.reason.replace(chr(34), chr(39))}"')
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _edge_credential(self, path: str) -> bool:
        return path in EDGE_CREDENTIAL_PATHS and self.hub.state.settings.edge_token is not None

    @staticmethod
    def _header(scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return str(value.decode("latin-1"))
        return None

    @staticmethod
    def _bearer(header: str | None) -> str:
        if header is None:
            raise AuthenticationFailed("this API needs a bearer token (Authorization: "
                                       "Bearer <JWT>)", error="invalid_request")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("use the Bearer scheme with a JWT",
                                       error="invalid_request")
        return token.strip()

    async def _verify(self, token: str) -> Principal:
        access: Access = self.hub.state.access
        cached = self._cache.get(token)
        if cached is not None and cached[1] > time.time():
            principal = cached[0]
        else:
            principal = await anyio.to_thread.run_sync(access.verifier.verify, token)
            self._cache[token] = (principal, _expiry(token))
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        reason = await account_refusal(access, principal)
        if reason is not None:
            raise AuthenticationFailed(f"{reason}: its tokens are no longer accepted")
        return principal


async def account_refusal(access: Access, principal: Principal) -> str | None:
    """Why `principal`'s account no longer stands (built-in issuer only; cached), or None."""
    if principal.issuer != access.issuer.issuer:
        return None
    found, reason = access.accounts.cached(principal.subject)
    if not found:
        reason = await anyio.to_thread.run_sync(access.accounts.check, principal.subject)
    return reason


def _expiry(token: str) -> float:
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    return float(claims.get("exp", 0))


# -- dependencies -----------------------------------------------------------------------------


def current_principal(request: Request) -> Principal:
    """Who asks (the local operator when authentication is disabled)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal if principal is not None else LOCAL_OPERATOR


def optional_principal(request: Request) -> Principal | None:
    """The caller of a public route, if it sent a valid token (or auth is off)."""
    if request.app.state.settings.auth == "disabled":
        return LOCAL_OPERATOR
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


def public_base(request: Request) -> str:
    """The base URL clients reach the hub under (settings.public_url, else the request's)."""
    configured: str | None = request.app.state.settings.public_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def get_access(request: Request) -> Access:
    access: Access = request.app.state.access
    return access


def get_audit(request: Request) -> AuditSink:
    audit: AuditSink = request.app.state.audit
    return audit


def request_guard(request: Request) -> Guard | None:
    """The request principal's guard (one per request), or None when auth is off."""
    if request.app.state.settings.auth == "disabled":
        return None
    guard: Guard | None = getattr(request.state, "guard", None)
    if guard is None:
        access = get_access(request)
        client = request.client.host if request.client else ""
        principal = current_principal(request)
        purpose = request.headers.get(PURPOSE_HEADER) or principal.purpose
        context = AccessContext(purpose=purpose or "", source=client,
                                posture=request_posture(request, principal))
        guard = Guard(principal, access.pdp, access.catalogue,
                      access.sharing, get_audit(request), context)
        request.state.guard = guard
    return guard


def request_posture(request: Request, principal: Principal) -> Posture:
    """The registry's posture of the device the request comes from (a device principal) or
    names (the Cityhub-Device header); no device, no posture. Read on each request."""
    device_id = (principal.subject if principal.kind is PrincipalKind.DEVICE
                 else request.headers.get(DEVICE_HEADER))
    if not device_id:
        return NO_DEVICE
    registry: DeviceHub | None = getattr(request.app.state, "devices", None)
    if registry is None:
        return posture_of(device_id, False, now=datetime.now(UTC))
    try:  # an invalid tenant name holds no device
        record = registry.get(request.headers.get("ngsild-tenant") or "", device_id)
    except UnknownDevice:
        return posture_of(device_id, False, now=datetime.now(UTC))
    return posture_of(device_id, True, record.state, record.last_seen, now=datetime.now(UTC))


def guarded_store(request: Request, store: Store) -> Store:
    guard = request_guard(request)
    if guard is None:
        return store
    return GuardedStore(store, guard, inline=getattr(request.app.state, "inline_reads", False))


def guarded_service(request: Request, service: EntityService) -> EntityService:
    guard = request_guard(request)
    return service if guard is None else GuardedService(service, guard)


def guarded_temporal(request: Request, temporal: TemporalStore) -> Any:
    guard = request_guard(request)
    if guard is None:
        return temporal
    return GuardedTemporal(temporal, request.app.state.store, guard)


def owned_subscriptions(request: Request, subscriptions: SubscriptionStore) -> Any:
    """The principal's own subscriptions (a new one records its owner), or all when auth is
    off."""
    if request.app.state.settings.auth == "disabled":
        return subscriptions
    guard = request_guard(request)
    assert guard is not None
    return OwnedSubscriptions(subscriptions, get_access(request).subscribers, guard.principal,
                              guard.context.purpose)


PrincipalDep = Annotated[Principal, Depends(current_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]
AccessDep = Annotated[Access, Depends(get_access)]
AuditDep = Annotated[AuditSink, Depends(get_audit)]
