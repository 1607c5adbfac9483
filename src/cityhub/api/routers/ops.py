"""The operations centre: the page at /, its static assets (gzip), /ops/view (the first view,
one gzipped columnar answer from the in-memory district snapshot), /ops/summary and /ops/events
(server-sent events carrying the changed rows).

What a reader gets is cut to the layers the governance policies let it read
(`cityhub.web.visibility`): every layer when authentication is off; with it on, the bearer
token's principal, or an anonymous visitor decided as a citizen (public data only).
"""

from __future__ import annotations

import asyncio
import gzip
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import jwt
import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import FileResponse, Response, StreamingResponse

from cityhub.api.auth import PURPOSE_HEADER, account_refusal
from cityhub.api.deps import ReadTenant
from cityhub.api.ingestion import CHANGES, change_from_json, relay_order
from cityhub.api.ldio import json_response
from cityhub.api.service_access import ledger_resource, may
from cityhub.bus import BusMessage
from cityhub.governance.identity import LOCAL_OPERATOR, Principal
from cityhub.ngsild import temporal as tl
from cityhub.store import SqlStore
from cityhub.store.port import Change
from cityhub.store.service import utc_now
from cityhub.store.temporal import TemporalStore
from cityhub.web import live, summary, visibility
from cityhub.web.snapshot import BY_TYPE, HISTORY, LAYERS, DistrictSnapshot, columns

WEB = Path(__file__).resolve().parents[2] / "web"
BATCH_EVERY_S = 0.25  # notices collected into one event
KEEPALIVE_S = 15.0
REDECIDE_S = 300.0  # a live stream's views are decided again this often (revoked grants)
MAX_BATCH = 2000
GZIP_MIN_BYTES = 1024
_SNAPSHOT_LOCK = threading.Lock()
_CACHE_SIZE = 16

router = APIRouter(tags=["operations centre"])


def install(app: FastAPI) -> None:
    """Serve the page and its assets; called once by the app factory."""
    app.mount("/static", GZipMiddleware(StaticFiles(directory=WEB / "static"),
                                        minimum_size=GZIP_MIN_BYTES), name="static")
    app.include_router(router)


def attach(app: FastAPI, store: SqlStore) -> None:
    """Set up the snapshot and the live stream (in the app's lifespan). With the in-process bus
    they are fed by the store's changes; with a shared bus by `follow_bus`, so that every hub
    process sees every process's writes. The snapshot itself is made on first use (the context
    resolver comes later)."""
    feed = live.LocalFeed()
    app.state.feed = feed
    app.state.snapshot = None
    app.state.ops_cache = {}
    to_feed = live.listener(feed)

    def on_changes(conn: Any, changes: list[Change]) -> None:
        snapshot: DistrictSnapshot | None = app.state.snapshot
        if snapshot is not None:
            snapshot.apply(changes)  # first: a notice is read after the rows are current
        to_feed(conn, changes)

    app.state.ops_changes = on_changes
    if app.state.settings.bus_url.startswith("memory:"):
        store.listeners.append(on_changes)


async def follow_bus(app: FastAPI) -> None:
    """With a shared bus (NATS), feed the snapshot and the stream from every committed change
    any hub process published (`cityhub.changes.>`), through a broadcast listener: each
    process gets them all, from the moment it starts. Nothing to do on the in-process bus."""
    if app.state.settings.bus_url.startswith("memory:"):
        return
    on_changes = app.state.ops_changes
    applied: dict[tuple[str, str], int] = {}  # entity -> outbox order of its last change

    async def hear(message: BusMessage) -> None:
        change = change_from_json(orjson.loads(message.data))
        entity = change.entity or change.previous or {}
        if not any(live.short(t) in BY_TYPE for t in entity.get("type", [])):
            return  # not drawn on the page: neither the snapshot nor the stream want it
        order, key = relay_order(message.msg_id), (change.tenant, change.entity_id)
        if order is not None:
            if order <= applied.get(key, -1):
                return  # an older state, published late (a relay retried a failed batch)
            applied[key] = order
        on_changes(None, [change])

    await app.state.bus.listen(f"{CHANGES}.>", hear)


def snapshot_of(app: Any) -> DistrictSnapshot:
    with _SNAPSHOT_LOCK:
        made: DistrictSnapshot | None = app.state.snapshot
        if made is None:
            store = app.state.store
            made = app.state.snapshot = DistrictSnapshot(
                store, app.state.contexts_resolver.term_map(None),
                history=_history_reader(TemporalStore(store)))
    return made


def _history_reader(temporal: TemporalStore) -> Any:
    def read(tenant: str, entity_id: str) -> list[tuple[str, float]]:
        entity = temporal.store.get(tenant, entity_id)
        if entity is None:
            return []
        iri = next((a for a in entity["attrs"] if a.endswith("/congestionIndex")), None)
        if iri is None:
            return []
        query = tl.TemporalQuery(last_n=HISTORY, representation="temporalValues")
        series = temporal.read(tenant, entity, query, [iri]).get(iri)
        out = []
        for row in series.items if series else []:
            value = row.instance.get("value")
            at = row.instance.get("observedAt") or row.instance.get("modifiedAt")
            if isinstance(row, tl.HistoryRow) and not row.deleted and \
                    isinstance(value, int | float) and at:
                out.append((str(at), float(value)))
        return out

    return read


@router.get("/", include_in_schema=False)
def page() -> Response:
    return FileResponse(WEB / "templates" / "index.html", media_type="text/html",
                        headers={"Cache-Control": "no-cache"})


def _features(app: Any) -> dict[str, str | None]:
    """Optional parts present in this hub (audit ledger, sign-in, Open311), from its OpenAPI
    description (routers are included, not flattened, so this is where they are listed)."""
    paths: dict[str, dict[str, Any]] = app.openapi().get("paths", {})
    open311 = next((p for p, ops in paths.items() if p.startswith("/open311")
                    and "requests" in p and "{" not in p and "get" in ops), None)
    return {"audit": "/audit/leaves" if "get" in paths.get("/audit/leaves", {}) else None,
            "login": "/auth/login" if "post" in paths.get("/auth/login", {}) else None,
            "open311": open311}


# -- who reads ----------------------------------------------------------------------------------


def reader(request: Request) -> tuple[Principal, str]:
    """The principal of the request and its purpose (anonymous: decided as a citizen)."""
    if request.app.state.settings.auth == "disabled":
        return LOCAL_OPERATOR, ""
    principal: Principal = getattr(request.state, "principal", None) or visibility.ANONYMOUS
    return principal, request.headers.get(PURPOSE_HEADER) or principal.purpose or ""


def views_for(request: Request, tenant: str) -> dict[str, visibility.LayerView]:
    if request.app.state.settings.auth == "disabled":
        return visibility.everything()
    principal, purpose = reader(request)
    access = request.app.state.access
    gov = visibility.Governance(access.pdp, access.catalogue, access.sharing,
                                request.app.state.audit)
    source = request.client.host if request.client else ""
    return visibility.decide(gov, principal, tenant, snapshot_of(request.app).terms, purpose,
                             source)


def _may_audit(request: Request) -> bool:
    """Whether the reader may read audit records (anonymous visitors may not)."""
    if request.app.state.settings.auth == "disabled":
        return True
    return getattr(request.state, "principal", None) is not None and \
        may(request, "audit", ledger_resource())


def _expires(request: Request) -> float:
    """When the request's bearer token expires (epoch seconds; never without one)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if getattr(request.state, "principal", None) is None or scheme.lower() != "bearer":
        return math.inf
    claims = jwt.decode(token.strip(), options={"verify_signature": False})  # verified already
    return float(claims.get("exp", math.inf))


def _who(principal: Principal) -> dict[str, Any]:
    return {"subject": principal.subject, "kind": principal.kind.value,
            "department": principal.department or None}


# -- the first view -----------------------------------------------------------------------------


def _visible(snapshot: DistrictSnapshot, tenant: str,
             views: dict[str, visibility.LayerView]) -> tuple[int, dict[str, Any], list[Any]]:
    version, rows, history = snapshot.copy(tenant)
    cut = {layer.key: visibility.cut(layer, views[layer.key], rows[layer.key])
           for layer in LAYERS if layer.key in views}
    return version, cut, history if "indices" in views else []


def _view_body(request: Request, tenant: str) -> tuple[bytes, dict[str, Any]]:
    snapshot = snapshot_of(request.app)
    views = views_for(request, tenant)
    version, layers, history = _visible(snapshot, tenant, views)
    principal, purpose = reader(request)
    visibility.record_reads(request.app.state.audit, principal, tenant, purpose, views,
                            {k: len(v) for k, v in layers.items()})
    key = (tenant, version, tuple(sorted((k, v.columns, v.area) for k, v in views.items())))
    cache: dict[Any, bytes] = request.app.state.ops_cache
    body = cache.get(key)
    if body is None:
        body = orjson.dumps({
            "layers": {layer.key: columns(layer, layers[layer.key]) for layer in LAYERS
                       if layer.key in layers},
            "denied": [layer.key for layer in LAYERS if layer.key not in views],
            "history": history,
            "summary": summary.summarize(layers),
            "version": version,
        })
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[key] = body
    features = _features(request.app)
    if features["audit"] and not _may_audit(request):
        features["audit"] = "denied"  # the page says so instead of asking and being refused
    extra = {"reader": _who(principal), "features": features,
             "generatedAt": utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")}
    return body, extra


@router.get("/ops/view", summary="The first view of the district: every visible layer as "
            "columns, the summary, the congestion history (gzip when accepted)")
async def ops_view(request: Request, tenant: ReadTenant) -> Response:
    compress = "gzip" in request.headers.get("accept-encoding", "")

    def answer() -> bytes:  # in the thread pool: the district is megabytes before gzip
        body, extra = _view_body(request, tenant)
        data = body[:-1] + b"," + orjson.dumps(extra)[1:]  # one object: cached part + per-reader
        return gzip.compress(data, compresslevel=5, mtime=0) if compress else data

    headers = {"Cache-Control": "no-store", "Vary": "Authorization, Accept-Encoding"}
    if compress:
        headers["Content-Encoding"] = "gzip"
    return Response(await run_in_threadpool(answer), media_type="application/json",
                    headers=headers)


@router.get("/ops/summary", summary="Key figures and the 2026 scorecard of the visible layers")
async def ops_summary(request: Request, tenant: ReadTenant) -> Response:
    def build() -> dict[str, Any]:
        _, layers, _ = _visible(snapshot_of(request.app), tenant, views_for(request, tenant))
        return summary.summarize(layers)

    body = await run_in_threadpool(build)
    body["features"] = _features(request.app)
    body["generatedAt"] = utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return json_response(body)


# -- live -----------------------------------------------------------------------------------------


def rows_event(snapshot: DistrictSnapshot, tenant: str, views: dict[str, visibility.LayerView],
               notices: list[live.Notice]) -> bytes | None:
    """The current rows of the entities named, for the layers the reader may see: `set` as
    columns, `removed` ids; the summary and the city index's latest value."""
    wanted: dict[str, set[str]] = {}
    for notice in notices:
        layer = BY_TYPE.get(notice.type)
        if notice.tenant == tenant and layer is not None and layer.key in views:
            wanted.setdefault(layer.key, set()).add(notice.id)
    if not wanted:
        return None
    out: dict[str, Any] = {}
    for layer in LAYERS:
        if layer.key not in wanted:
            continue
        current = snapshot.rows_of(tenant, layer.key, wanted[layer.key])
        present = visibility.cut(layer, views[layer.key],
                                 {i: r for i, r in current.items() if r is not None})
        out[layer.key] = {"set": columns(layer, present),
                          "removed": sorted(i for i in current if i not in present)}
    _, layers, history = _visible(snapshot, tenant, views)
    return b"event: rows\ndata: " + orjson.dumps({
        "layers": out, "summary": summary.summarize(layers),
        "history": history[-1:] if "indices" in wanted else []}) + b"\n\n"


async def _standing() -> bool:
    return True


async def _reader_stands(request: Request) -> bool:
    """Whether the reader's account still stands (cached for ACCOUNT_TTL_S, see auth)."""
    principal = getattr(request.state, "principal", None)
    if request.app.state.settings.auth == "disabled" or principal is None:
        return True
    return await account_refusal(request.app.state.access, principal) is None


async def _batches(request: Request, feed: live.ChangeFeed, tenant: str,
                   snapshot: DistrictSnapshot, views: dict[str, visibility.LayerView],
                   until: float = math.inf,
                   stands: Callable[[], Awaitable[bool]] = _standing,
                   decide: Callable[[], Awaitable[dict[str, visibility.LayerView]]] | None = None,
                   ) -> AsyncIterator[bytes]:
    """The stream's events; it ends at `until` (epoch seconds: when the reader's token
    expires) or as soon as `stands` says the reader's account is disabled or removed (checked
    on each batch and idle tick), so the reader comes back and is decided again. Every
    REDECIDE_S the views are decided again (`decide`); when they changed (a grant revoked or
    expired) the page is told to reload."""
    sub = feed.subscribe()
    try:
        yield b"retry: 1000\nevent: hello\ndata: {}\n\n"
        idle = 0.0
        decided = time.monotonic()
        while time.time() < until and not await request.is_disconnected():
            if not await stands():
                return
            if decide is not None and time.monotonic() - decided >= REDECIDE_S:
                decided = time.monotonic()
                fresh = await decide()
                if fresh != views:
                    views = fresh
                    yield b"event: reload\ndata: {}\n\n"
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
            event = await run_in_threadpool(rows_event, snapshot, tenant, views,
                                            [n for n in notices if n is not None])
            if event is not None:
                yield event
    finally:
        feed.unsubscribe(sub)


class _EventStream(StreamingResponse):
    media_type = "text/event-stream"  # also what the OpenAPI documents for /ops/events


_EVENT = {"type": "object", "description": "One server-sent event", "properties": {
    "event": {"type": "string"}, "data": {"type": "string", "description": "JSON"},
    "id": {"type": "string"}, "retry": {"type": "integer"}}}


@router.get("/ops/events", response_class=_EventStream,
            responses={200: {"description": "A stream of events", "content": {
                _EventStream.media_type: {"schema": _EVENT}}}},
            summary="Server-sent events with the changed rows of the visible layers")
async def ops_events(
    request: Request,
    tenant: Annotated[str, Query(max_length=64, pattern=r"^[A-Za-z0-9_\-]*$",
                                 description="Tenant (default: the default tenant)")] = "",
) -> Response:
    snapshot = snapshot_of(request.app)
    views = await run_in_threadpool(views_for, request, tenant)
    return _EventStream(
        _batches(request, request.app.state.feed, tenant, snapshot, views, _expires(request),
                 partial(_reader_stands, request),
                 partial(run_in_threadpool, views_for, request, tenant)),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
