"""The operations centre: the page at /, its static assets, /ops/summary and /ops/events (SSE).

The page reads entities through the NGSI-LD API itself (with the user's bearer token once
identity lands); this router only adds the district summary and the live change stream, whose
notices name what changed so the page can read it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from cityhub.api.deps import ReadTenant, StoreDep
from cityhub.api.ldio import json_response
from cityhub.store import SqlStore
from cityhub.store.service import utc_now
from cityhub.web import live, summary

WEB = Path(__file__).resolve().parents[2] / "web"
BATCH_EVERY_S = 0.25  # notices collected into one event (the page reads them in one request)
KEEPALIVE_S = 15.0
MAX_BATCH = 2000

router = APIRouter(tags=["operations centre"])


def install(app: FastAPI) -> None:
    """Serve the page and its assets; called once by the app factory."""
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    app.include_router(router)


def attach(app: FastAPI, store: SqlStore) -> None:
    """Feed the page's live stream from the store's changes (in the app's lifespan)."""
    feed = live.LocalFeed()
    app.state.feed = feed
    store.listeners.append(live.listener(feed))


@router.get("/", include_in_schema=False)
def page() -> Response:
    return FileResponse(WEB / "templates" / "index.html", media_type="text/html",
                        headers={"Cache-Control": "no-cache"})


def _features(app: Any) -> dict[str, str | None]:
    """Optional parts present in this hub (audit ledger, token issuer, Open311)."""
    found: dict[str, str | None] = {"audit": None, "login": None, "open311": None}
    for route in app.routes:
        if not isinstance(route, Route) or "{" in route.path:
            continue
        methods = route.methods or set()
        if found["audit"] is None and route.path.startswith("/audit") and "GET" in methods:
            found["audit"] = route.path
        if found["login"] is None and route.path.endswith("/token") and "POST" in methods:
            found["login"] = route.path
        if found["open311"] is None and "requests" in route.path and "GET" in methods \
                and route.path.startswith("/open311"):
            found["open311"] = route.path
    return found


@router.get("/ops/summary", summary="District summary, 2026 scorecard and optional features")
def ops_summary(request: Request, tenant: ReadTenant, store: StoreDep) -> Response:
    terms = request.app.state.contexts_resolver.term_map(None)
    body = summary.summarize(store, tenant, terms)
    body["features"] = _features(request.app)
    body["generatedAt"] = utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return json_response(body)


async def _batches(request: Request, feed: live.ChangeFeed, tenant: str) -> AsyncIterator[bytes]:
    sub = feed.subscribe()
    try:
        yield b"retry: 1000\nevent: hello\ndata: {}\n\n"
        idle = 0.0
        while not await request.is_disconnected():
            try:
                first = await asyncio.wait_for(sub.queue.get(), timeout=BATCH_EVERY_S * 4)
            except TimeoutError:
                idle += BATCH_EVERY_S * 4
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield b": keepalive\n\n"
                continue
            idle = 0.0
            await asyncio.sleep(BATCH_EVERY_S)
            notices = [first]
            while not sub.queue.empty() and len(notices) < MAX_BATCH:
                notices.append(sub.queue.get_nowait())
            if any(n is None for n in notices):
                yield b"event: reload\ndata: {}\n\n"
                continue
            changes = [n.as_json() for n in notices if n is not None and n.tenant == tenant]
            if changes:
                yield b"event: changes\ndata: " + orjson.dumps({"changes": changes}) + b"\n\n"
    finally:
        feed.unsubscribe(sub)


@router.get("/ops/events", summary="Server-sent events naming the entities that changed")
async def ops_events(
    request: Request,
    tenant: Annotated[str, Query(max_length=64, pattern=r"^[A-Za-z0-9_\-]*$",
                                 description="Tenant (default: the default tenant)")] = "",
) -> Response:
    return StreamingResponse(
        _batches(request, request.app.state.feed, tenant), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
