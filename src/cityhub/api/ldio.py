"""JSON-LD in and out of HTTP: which @context a request uses, its body, and response negotiation.

Requests give their @context by Link header (application/json) or inline (application/ld+json);
responses carry it back the same way, or as GeoJSON when asked for application/geo+json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cityhub.ngsild import jsonld
from cityhub.ngsild.errors import BadRequestData, InvalidRequest, NotAcceptable
from cityhub.ngsild.jsonld import ContextValue
from cityhub.ngsild.model import CORE_CONTEXT_URL
from cityhub.ngsild.terms import Terms

JSON, LD_JSON, GEO_JSON = "application/json", "application/ld+json", "application/geo+json"
MAX_BODY = 8 * 1024 * 1024


@dataclass(frozen=True)
class LdContext:
    """The request's @context (as given) and the term map built from it."""

    value: Any
    terms: Terms


async def term_map(request: Request, context: ContextValue) -> Terms:
    """The term map of `context`: from the resolver's cache on the event loop, else built in
    the thread pool (building may fetch a remote @context, which must not block the loop)."""
    resolver = request.app.state.contexts_resolver
    held: Terms | None = resolver.cached(context)
    if held is not None:
        return held
    built: Terms = await run_in_threadpool(resolver.term_map, context)
    return built


async def context_from_link(request: Request) -> LdContext:
    """For requests without a body: the Link header's context, or the core context."""
    url = jsonld.parse_link_header(request.headers.getlist("link"))
    return LdContext(url, await term_map(request, url))


LinkContext = Annotated[LdContext, Depends(context_from_link)]


async def read_json(request: Request) -> tuple[Any, LdContext]:
    """The JSON body and the @context it is to be read with (spec 6.3.5)."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequestData(f"request body larger than {MAX_BODY} bytes")
    if not raw:
        raise InvalidRequest("request body is empty")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"request body is not valid JSON: {error}") from None
    # A batch (an array of entities) carries its @context in each entity: read the first one's.
    carrier = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else body
    context = jsonld.request_context(
        request.headers.get("content-type"), request.headers.getlist("link"), carrier
    )
    return body, LdContext(context, await term_map(request, context))


def strip_context(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k != "@context"}
    return body


def negotiate(accept: str | None, *, geo: bool = True) -> str:
    """Pick the response media type from Accept (JSON when absent or */*)."""
    if not accept:
        return JSON
    offered = [JSON, LD_JSON, GEO_JSON] if geo else [JSON, LD_JSON]
    best, best_q = None, -1.0
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media, q = pieces[0].lower(), 1.0
        for param in pieces[1:]:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        candidates = offered if media in ("*/*", "application/*") else [media]
        for candidate in candidates:
            if candidate in offered and q > best_q:
                best, best_q = candidate, q
                break
    if best is None or best_q <= 0:
        raise NotAcceptable(f"cannot answer with any of: {accept}")
    return best


async def accept_header(request: Request) -> str | None:
    """The Accept header, absent for many clients (then JSON is answered)."""
    return request.headers.get("accept")


AcceptHeader = Annotated[str | None, Depends(accept_header)]


def ld_response(
    data: Any,
    ctx: LdContext,
    media: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render `data` (already compacted) with the @context where the media type wants it."""
    out_headers = dict(headers or {})
    context_value = ctx.value if ctx.value is not None else CORE_CONTEXT_URL
    if media == LD_JSON:
        if isinstance(data, list):
            data = [{**item, "@context": context_value} for item in data]
        elif isinstance(data, dict):
            data = {**data, "@context": context_value}
    elif isinstance(context_value, str):
        out_headers["Link"] = jsonld.link_header(context_value)
    return Response(orjson.dumps(data), status_code=status, media_type=media, headers=out_headers)


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Plain JSON (no @context): batch results, problem lists, discovery counts."""
    return Response(orjson.dumps(data), status_code=status, media_type=JSON, headers=headers)
