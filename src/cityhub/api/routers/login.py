"""POST /auth/login: user name and password in, a bearer token of the built-in issuer out.

For the operations page's sign-in form (and any script). The password is checked against its
argon2id hash (`cityhub.governance.passwords`); the token is the same `BuiltinIssuer.issue` token
`cityhub auth token` prints, with the asked purpose as its `purpose` claim (grants are bound to
a purpose). The body is parsed by hand so that no validation error ever echoes the password;
an unknown user and a wrong password get the same answer.

Each check is one argon2id hash of 64 MiB, and the route is public: at most `HASHES` checks
run at once (the others wait their turn), and a body over `MAX_BODY` bytes is refused (413)
from its Content-Length or as soon as the stream passes the limit, never read whole. The
password store and the limiter are made at start-up (`start`, from the app's lifespan), not on
the event loop at the first sign-in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from cityhub.api.ldio import json_response
from cityhub.api.problems import problem
from cityhub.governance.identity import PrincipalKind
from cityhub.governance.issuer import IssuerError
from cityhub.governance.passwords import Passwords

log = logging.getLogger(__name__)
router = APIRouter(tags=["identity"])
LIFETIME = timedelta(hours=8)
MAX_BODY = 4096
HASHES = 2  # argon2id checks at once: 64 MiB each
SIGNS_IN = frozenset({PrincipalKind.STAFF, PrincipalKind.CITIZEN})  # people, not services

_BODY = {"type": "object", "required": ["username", "password"], "properties": {
    "username": {"type": "string"}, "password": {"type": "string", "format": "password"},
    "purpose": {"type": "string", "description": "Purpose claim of the token (a grant's)"}}}


@dataclass(frozen=True)
class SignIn:
    """What the route needs, made once at start-up."""

    passwords: Passwords
    hashing: anyio.CapacityLimiter


def start(app: Any) -> None:
    """From the app's lifespan (its store open): one dummy hash and the limiter."""
    app.state.sign_in = SignIn(Passwords(app.state.store.db), anyio.CapacityLimiter(HASHES))


def _refused(request: Request, status: int, detail: str) -> Response:
    kind = "Unauthorized" if status == 401 else "BadRequestData"
    title = {401: "Sign-in refused", 413: "Request body too large"}.get(status, "Bad request")
    return problem(status, kind, title, detail, request.url.path)


def _escaped(text: str) -> str:
    """A caller's text for a log line: newlines and other controls escaped."""
    return text.encode("unicode_escape").decode()


async def _body(request: Request) -> bytes | None:
    """The body, or None when it is (or says it is) over MAX_BODY; never reads past it."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        return None
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            return None
    return bytes(raw)


def _fields(raw: bytes) -> tuple[str, str, str] | None:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    username, password, purpose = (body.get("username"), body.get("password"),
                                   body.get("purpose") or "")
    if not (isinstance(username, str) and isinstance(password, str)
            and isinstance(purpose, str)):
        return None
    return username.strip(), password, purpose.strip()


@router.post("/auth/login", summary="Sign in with a user name and password: a bearer token",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": _BODY}}}},
             responses={400: {"description": "Not a JSON object with username and password"},
                        401: {"description": "Unknown user or wrong password"},
                        413: {"description": f"A body over {MAX_BODY} bytes"}})
async def login(request: Request) -> Response:
    raw = await _body(request)
    if raw is None:
        return _refused(request, 413, f"a sign-in body has at most {MAX_BODY} bytes")
    fields = _fields(raw)
    if fields is None or not fields[0] or len(fields[2]) > 200:
        return _refused(request, 400, "send a JSON object with username, password and an "
                        "optional purpose (strings)")
    username, password, purpose = fields
    issuer = request.app.state.access.issuer
    sign_in: SignIn = request.app.state.sign_in
    store = sign_in.passwords

    def check() -> str | None:
        account = issuer.account(username)
        ok = store.check(username, password)  # hashes even for an unknown account
        if not ok or account is None or account.disabled or account.kind not in SIGNS_IN:
            return None
        try:
            token: str = issuer.issue(username, lifetime=LIFETIME, purpose=purpose or None)
        except IssuerError:
            return None
        return token

    token = await anyio.to_thread.run_sync(check, limiter=sign_in.hashing)
    if token is None:
        log.info("event=login_refused user=%s", _escaped(username[:64]))
        return _refused(request, 401, "unknown user or wrong password")
    log.info("event=login user=%s purpose=%s", _escaped(username[:64]), _escaped(purpose) or "-")
    return json_response({"access_token": token, "token_type": "Bearer",
                          "expires_in": int(LIFETIME.total_seconds())})
