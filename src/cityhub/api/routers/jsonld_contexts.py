"""/jsonldContexts: store, list, serve and delete @contexts (ETSI GS CIM 009 6.29, 6.30, 5.13).

Thin: parse the request, call the `ContextRegistry` found in `app.state.contexts`, render.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cityhub.ngsild.context_registry import ContextRegistry
from cityhub.ngsild.errors import BadRequestData, UnsupportedMediaType
from cityhub.ngsild.jsonld import JSON, JSONLD, media_type, parse_json_body

router = APIRouter(prefix="/jsonldContexts", tags=["jsonldContexts"])


def get_registry(request: Request) -> ContextRegistry:
    registry = getattr(request.app.state, "contexts", None)
    if not isinstance(registry, ContextRegistry):
        raise RuntimeError("app.state.contexts must hold the hub's ContextRegistry")
    return registry


ContextsDep = Annotated[ContextRegistry, Depends(get_registry)]
FlagQuery = Annotated[str | None, Query(description="true or false")]
ContextIdPath = Annotated[
    str,
    Path(
        alias="contextId",
        description="Local id of the stored @context; for a Cached one also its original URL",
    ),
]


def _flag(name: str, value: str | None) -> bool:
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise BadRequestData(f"{name} must be true or false, not {value!r}")


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request data (problem details)"},
    404: {"description": "No stored @context with this id (problem details)"},
}

_ADD_BODY = {
    "required": True,
    "content": {
        media: {
            "schema": {
                "type": "object",
                "required": ["@context"],
                "properties": {"@context": {}},
            }
        }
        for media in (JSON, JSONLD)
    },
}


@router.get("", summary="List stored @contexts (5.13.3)", responses={400: _PROBLEMS[400]})
def list_contexts(
    registry: ContextsDep,
    details: FlagQuery = None,
    kind: Annotated[str | None, Query(description="Hosted, Cached or ImplicitlyCreated")] = None,
) -> JSONResponse:
    return JSONResponse(registry.list(details=_flag("details", details), kind=kind))


@router.post(
    "",
    status_code=201,
    summary="Add a user @context (5.13.2)",
    response_class=Response,
    responses={
        201: {"description": "Stored; Location holds the URL the hub serves it at"},
        400: _PROBLEMS[400],
        415: {"description": "Content-Type is not JSON (problem details)"},
    },
    openapi_extra={"requestBody": _ADD_BODY},
)
async def add_context(request: Request, registry: ContextsDep) -> Response:
    media = media_type(request.headers.get("content-type"))
    if media not in (JSON, JSONLD):
        raise UnsupportedMediaType(f"send the @context as {JSON} or {JSONLD}, not {media}")
    body = parse_json_body(await request.body())
    record = await run_in_threadpool(registry.add, body)
    return Response(status_code=201, headers={"Location": record.url})


@router.get(
    "/{contextId:path}",
    summary="Serve a stored @context or its metadata (5.13.4)",
    responses={
        200: {"content": {JSONLD: {}}},
        **_PROBLEMS,
        422: {"description": "A Cached @context is not served (problem details)"},
    },
)
def retrieve_context(
    registry: ContextsDep, context_id: ContextIdPath, details: FlagQuery = None
) -> JSONResponse:
    if _flag("details", details):
        return JSONResponse(registry.get(context_id, details=True))
    return JSONResponse(registry.get(context_id), media_type=JSONLD)


@router.delete(
    "/{contextId:path}",
    status_code=204,
    summary="Delete a stored @context, or reload a Cached one (5.13.5)",
    response_class=Response,
    responses={
        **_PROBLEMS,
        503: {"description": "Reloading failed: the @context is not available (problem details)"},
    },
)
def delete_context(
    registry: ContextsDep, context_id: ContextIdPath, reload: FlagQuery = None
) -> Response:
    registry.delete(context_id, reload=_flag("reload", reload))
    return Response(status_code=204)
