"""/jsonldContexts: store, list, serve and delete @contexts (ETSI GS CIM 009 6.29, 6.30, 5.13).

Thin: parse the request, call the `ContextRegistry` found in `app.state.contexts`, render.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cityhub.api import openapi as api
from cityhub.ngsild.context_registry import ContextRegistry
from cityhub.ngsild.errors import BadRequestData, UnsupportedMediaType
from cityhub.ngsild.jsonld import JSON, JSONLD, media_type, parse_json_body

router = APIRouter(prefix="/jsonldContexts", tags=["jsonldContexts"])


async def get_registry(request: Request) -> ContextRegistry:
    registry = getattr(request.app.state, "contexts", None)
    if not isinstance(registry, ContextRegistry):
        raise RuntimeError("app.state.contexts must hold the hub's ContextRegistry")
    return registry


ContextsDep = Annotated[ContextRegistry, Depends(get_registry)]
FlagQuery = Annotated[
    str | None, Query(description="true or false", json_schema_extra={"enum": ["true", "false"]})
]
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


_NOT_FOUND = "No stored @context with this id (problem details)"
_DOCUMENT = {
    "description": "The stored @context document (application/ld+json), or its metadata "
    "with details=true (application/json)",
    "content": {JSONLD: {"schema": api.CONTEXT_DOCUMENT}, JSON: {"schema": {"type": "object"}}},
}
_LIST = api.json_content(
    {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}},
    "URLs of the stored @contexts, or their metadata with details=true",
)


@router.get(
    "",
    summary="List stored @contexts (5.13.3)",
    responses=api.responses(400, status_200=_LIST),
)
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
    responses=api.responses(
        400, 415, 503, status_201=api.created("Stored; Location is the URL the hub serves it at")
    ),
    openapi_extra=api.request_body(
        api.CONTEXT_DOCUMENT, "A JSON-LD document with an @context member", link=False
    ),
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
        **api.responses(400, 404, status_200=_DOCUMENT),
        404: api.problem(404, _NOT_FOUND),
        422: api.problem(422, "A Cached @context is not served (problem details)"),
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
        **api.responses(400),
        404: api.problem(404, _NOT_FOUND),
        503: api.problem(503, "Reloading failed: the @context is not available"),
    },
)
def delete_context(
    registry: ContextsDep, context_id: ContextIdPath, reload: FlagQuery = None
) -> Response:
    registry.delete(context_id, reload=_flag("reload", reload))
    return Response(status_code=204)
