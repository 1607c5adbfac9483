"""The two hottest routes straight from the ASGI entry point, past FastAPI's machinery.

`GET /ngsi-ld/v1/entities/{id}` and `PATCH /ngsi-ld/v1/entities/{id}/attrs/{attr}` (and
`GET /health`, the benchmarks' floor, so that floor and hot routes share one stack) run the
very handlers FastAPI would run (routers/entities.py), with the same request object; what
they skip is what FastAPI adds around a handler that declares no dependency: its middleware
layers (error, telemetry, body limit, exit stack, exception), the walk over every route of
every router, and the endpoint wrapper. On this machine that was a third of a retrieval's CPU.

Behaviour stays that of the FastAPI route: authentication runs the same `AuthMiddleware`
(wrapped around the fast path when it is on), errors become the same problem details
(`problems.problem_of`), and anything else (HEAD, a trailing slash, other methods) goes to
FastAPI. The API test suite runs through this entry point, as every client does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cityhub.api.problems import crash_response, problem_of
from cityhub.api.routers import entities
from cityhub.ngsild.errors import NgsiLdError

log = logging.getLogger(__name__)
Endpoint = Callable[[Request], Awaitable[Response]]
_ENTITY = re.compile(r"/ngsi-ld/v1/entities/([^/]+)")
_ATTRIBUTE = re.compile(r"/ngsi-ld/v1/entities/([^/]+)/attrs/([^/]+)")
_KEY = "cityhub.fastpath"  # where the matched endpoint waits in the scope


def match(scope: Scope, exact: dict[str, Endpoint]) -> Endpoint | None:
    """The handler of a hot route, bound to its path parameters, or None. `exact`: GET
    routes without parameters (`/health`, so that the benchmarks' floor is this stack too)."""
    method = scope["method"]
    if method == "GET":
        plain = exact.get(scope["path"])
        if plain is not None:
            return plain
        found = _ENTITY.fullmatch(scope["path"])
        if found is not None:
            entity_id = found[1]
            return lambda request: entities.retrieve_entity(entity_id, request)
    elif method == "PATCH":
        found = _ATTRIBUTE.fullmatch(scope["path"])
        if found is not None:
            entity_id, attr = found[1], found[2]
            return lambda request: entities.partial_update_attr(entity_id, attr, request)
    return None


async def _run(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app of the hot routes (behind AuthMiddleware when authentication is on)."""
    endpoint: Endpoint = scope[_KEY]
    request = Request(scope, receive, send)
    try:
        response = await endpoint(request)
    except NgsiLdError as error:
        response = problem_of(error)
    except Exception as error:  # as problems.install's handler of Exception
        log.exception("event=unhandled_error path=%s", scope["path"])
        response = crash_response(error)
    await response(scope, receive, send)


class Hub(FastAPI):
    """FastAPI with the hot routes answered first (see module docstring)."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.fast_app: ASGIApp = _run
        self.fast_gets: dict[str, Endpoint] = {}

    def answer_first(self, path: str, endpoint: Callable[[], Awaitable[Response]]) -> None:
        """Answer `GET path` (no parameters) on the fast path too."""
        self.fast_gets[path] = lambda _request: endpoint()

    def guard_fast_path(self, middleware: Callable[[ASGIApp], ASGIApp]) -> None:
        """Run the hot routes behind `middleware` too (authentication)."""
        self.fast_app = middleware(_run)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = match(scope, self.fast_gets)
            if endpoint is not None:
                scope["app"] = self
                scope[_KEY] = endpoint
                await self.fast_app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
