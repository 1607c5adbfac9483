"""Every error leaves the hub as an RFC 9457 problem detail carrying the NGSI-LD error type."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from cityhub.ngsild.errors import ERROR_BASE, NgsiLdError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
_STATUS_KIND = {
    400: "BadRequestData",
    401: "Unauthorized",
    403: "AccessDenied",
    404: "ResourceNotFound",
    405: "OperationNotSupported",
    406: "NotAcceptable",
    409: "AlreadyExists",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "OperationNotSupported",
}


def problem(
    status: int, kind: str, title: str, detail: str, instance: str | None = None
) -> Response:
    import orjson

    body: dict[str, object] = {
        "type": ERROR_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM)


def problem_of(exc: NgsiLdError) -> Response:
    """The problem detail of an NGSI-LD error, with its headers (e.g. WWW-Authenticate)."""
    response = problem(exc.status, exc.kind, exc.title, exc.detail, exc.instance)
    response.headers.update(getattr(exc, "headers", {}))
    return response


def crash_response(exc: Exception) -> Response:
    """What a client sees of an unexpected error (logged by the caller)."""
    return problem(500, "InternalError", "Internal error", f"{type(exc).__name__}")


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    """Map domain errors, validation errors, unknown routes and crashes to problem details."""

    @app.exception_handler(NgsiLdError)
    async def _ngsild(_request: Request, exc: NgsiLdError) -> Response:
        return problem_of(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        return problem(400, "BadRequestData", "Bad request data", _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        kind = _STATUS_KIND.get(exc.status_code, "InternalError")
        response = problem(exc.status_code, kind, kind, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("event=unhandled_error path=%s", request.url.path)
        return crash_response(exc)
