"""The notification worker of one hub process (an asyncio task using httpx).

It claims subscriptions with due notifications, whichever hub process queued them (see
cityhub.store.subscriptions), renders each Notification with the subscription's @context and
format, POSTs it to the endpoint and records the outcome: success, or a retry with exponential
back-off (given up after `max_attempts`). A claimed subscription is delivered in order by one
process at a time; `throttling` sends everything queued since the last notification as one
(nothing is dropped), `timeInterval` sends the current matching entities periodically.

`running(app)` is the async context manager the app's lifespan enters: it installs the
subscription store and its change listener and, when `notify_workers > 0`, runs the worker.
With a JetStream bus (CITYHUB_BUS_URL=nats://...) subscriptions are matched from the bus
instead: every hub process consumes `cityhub.changes.>` with the shared durable consumer
`cityhub-subscriptions` and queues what each change triggers, so the hub processes share that
work. Exactly once: the change's message id is recorded (`bus_consumed`) in the transaction
that queues its notifications, and the message acknowledged after it; a redelivery finds the
record and queues nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from cityhub.ngsild import geojson, jsonld
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.model import CORE_CONTEXT_URL, LOCATION, Entity
from cityhub.ngsild.subscription import notification_body, notification_entity
from cityhub.ngsild.terms import Terms
from cityhub.store.port import EntityQuery, Store
from cityhub.store.service import utc_now
from cityhub.store.subscriptions import Claim, Pending, SubscriptionStore

log = logging.getLogger(__name__)
SUBSCRIPTIONS_CONSUMER = "cityhub-subscriptions"
JSON, LD_JSON, GEO_JSON = "application/json", "application/ld+json", "application/geo+json"


@dataclass(frozen=True)
class NotifierConfig:
    workers: int = 4  # subscriptions delivered at the same time by this process
    timeout_s: float = 5.0  # upper bound of one POST (an endpoint may ask for less)
    poll_s: float = 0.25  # how often to look for work queued by other processes
    retry_base_s: float = 1.0  # first retry after this, doubling each attempt ...
    retry_max_s: float = 600.0  # ... up to this
    max_attempts: int = 12  # then the notification is dropped (logged)
    batch_rows: int = 500  # queued notifications read per claim
    periodic_limit: int = 1000  # entities in one timeInterval notification
    sweep_every_s: float = 60.0


def retry_delay(config: NotifierConfig, attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: base, 2 base, 4 base, ... max."""
    return float(min(config.retry_base_s * 2 ** (attempts - 1), config.retry_max_s))


@dataclass(frozen=True)
class _Request:
    url: str
    headers: dict[str, str]
    content: bytes
    timeout_s: float


@dataclass
class Notifier:
    subscriptions: SubscriptionStore
    store: Store
    term_map: Callable[[Any], Terms]  # @context -> its term map
    context_url: Callable[[Any], str]  # @context -> a URL for a Link header
    config: NotifierConfig = field(default_factory=NotifierConfig)
    clock: Callable[[], datetime] = utc_now
    transport: httpx.AsyncBaseTransport | None = None
    # (tenant, subscription id, entities) -> what the subscription's owner may see of them
    # (cityhub.governance.subscribers); None when authentication is off.
    gate: Callable[[str, str, list[Entity]], list[Entity]] | None = None
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:"
                                               f"{uuid.uuid4().hex[:8]}")
    _client: httpx.AsyncClient | None = field(default=None, init=False)
    _loop_task: asyncio.Task[None] | None = field(default=None, init=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _stopping: bool = field(default=False, init=False)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(transport=self.transport, follow_redirects=False)
        self.subscriptions.on_queued = self.wake
        self._loop_task = asyncio.create_task(self._run(), name="cityhub-notifier")

    async def stop(self) -> None:
        """Claim nothing more; let deliveries under way finish (a POST cut short would be
        sent again by another process), then cancel what is left."""
        self.subscriptions.on_queued = None
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.config.timeout_s + 1.0)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def wake(self) -> None:
        """Look for work now (thread-safe; the store calls it when a write queued some)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        next_sweep = 0.0
        while not self._stopping:
            self._wake.clear()
            free = self.config.workers - len(self._tasks)
            claims: list[Claim] = []
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.config.sweep_every_s
                    dropped = await asyncio.to_thread(self.subscriptions.sweep, self.clock())
                    if dropped:
                        log.info("event=notifications_swept count=%d", dropped)
                if free > 0:
                    claims = await asyncio.to_thread(
                        self.subscriptions.claim, self.owner, self.clock(), limit=free,
                        max_rows=self.config.batch_rows,
                    )
            except Exception:
                log.exception("event=notifier_claim_failed")
            for claim in claims:
                task = asyncio.create_task(self._deliver(claim))
                self._tasks.add(task)
                task.add_done_callback(self._finished)
            if claims and len(claims) == free:
                continue  # maybe more work waits: look again at once
            try:  # not wait_for: before 3.12 it can swallow a cancellation
                async with asyncio.timeout(self.config.poll_s):
                    await self._wake.wait()
                await asyncio.sleep(0.005)  # let the waking write commit
            except TimeoutError:
                pass

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()

    async def _deliver(self, claim: Claim) -> None:
        try:
            subscription = claim.subscription
            if claim.periodic:
                entities = await asyncio.to_thread(self._current_entities, claim)
                if entities:
                    await self._send(claim, [], entities)
            elif subscription.throttling is not None:
                if claim.pending:
                    await self._send(claim, claim.pending, None)
            else:
                for item in claim.pending:
                    if self._stopping:
                        break
                    budget = claim.lease_until - self.clock().timestamp()
                    if budget < self._timeout(claim) + 1.0:
                        break  # the lease would end mid-delivery: leave the rest for later
                    if not await self._send(claim, [item], None):
                        break  # keep the order: later ones wait for this retry
        except Exception:
            log.exception("event=notification_delivery_crashed subscription=%s",
                          claim.subscription.id)
        finally:
            try:
                await asyncio.to_thread(self.subscriptions.release, claim)
            except Exception:
                log.exception("event=notifier_release_failed subscription=%s",
                              claim.subscription.id)

    def _timeout(self, claim: Claim) -> float:
        wanted = claim.subscription.notification.endpoint.timeout_s
        return self.config.timeout_s if wanted is None else min(wanted, self.config.timeout_s)

    async def _send(self, claim: Claim, items: list[Pending], entities: list[Entity] | None
                    ) -> bool:
        """Deliver one notification of `items` (or of `entities`); True when it arrived."""
        sub_id, client = claim.subscription.id, self._client
        assert client is not None, "start() first"
        ok, detail = False, ""
        try:
            request = await asyncio.to_thread(self._request, claim, items, entities)
        except NgsiLdError as error:  # e.g. its @context cannot be loaded now
            detail = f"render: {error.detail}"
        else:
            if request is None:  # nothing the owner may see: done, nothing sent
                return await asyncio.to_thread(self.subscriptions.record, claim, items,
                                               self.clock(), ok=True, retry_at=None)
            try:
                response = await client.post(
                    request.url, content=request.content, headers=request.headers,
                    timeout=request.timeout_s,
                )
                ok = 200 <= response.status_code < 300
                detail = f"status={response.status_code}"
            except httpx.HTTPError as error:
                detail = f"{type(error).__name__}"
        done = self.clock()
        retry_at = None
        if not ok and items:
            attempts = max(item.attempts for item in items) + 1
            if attempts < self.config.max_attempts:
                retry_at = done + timedelta(seconds=retry_delay(self.config, attempts))
            else:
                log.error("event=notification_dropped subscription=%s attempts=%d %s",
                          sub_id, attempts, detail)
        if not ok:
            log.warning("event=notification_failed subscription=%s %s", sub_id, detail)
        held = await asyncio.to_thread(self.subscriptions.record, claim, items, done, ok=ok,
                                       retry_at=retry_at)
        return ok and held

    # -- rendering (in a worker thread: term maps may load a context) --------------------------

    def _gated(self, claim: Claim, items: list[Pending], entities: list[Entity] | None
               ) -> tuple[list[Pending], list[Entity] | None]:
        """Minimise what a notification carries to what the subscription's owner may read."""
        assert self.gate is not None
        tenant, sub_id = claim.tenant, claim.subscription.id
        if entities is not None:
            return items, self.gate(tenant, sub_id, entities)
        kept = []
        for item in items:
            shown = self.gate(tenant, sub_id, [item.entity])
            if shown:
                before = self.gate(tenant, sub_id, [item.previous]) if item.previous else []
                kept.append(replace(item, entity=shown[0],
                                    previous=before[0] if before else None))
        return kept, None

    def _request(self, claim: Claim, items: list[Pending], entities: list[Entity] | None
                 ) -> _Request | None:
        if self.gate is not None:
            items, entities = self._gated(claim, items, entities)
            if not (items if entities is None else entities):
                return None
        subscription = claim.subscription
        endpoint = subscription.notification.endpoint
        terms = self.term_map(subscription.context)
        now = self.clock()
        if entities is not None:
            data = [notification_entity(subscription, "update", e, None, "", terms)
                    for e in entities]
            notification_id = f"urn:ngsi-ld:Notification:{uuid.uuid4()}"
        else:
            data = [notification_entity(subscription, i.operation, i.entity, i.previous, i.at,
                                        terms) for i in items]
            notification_id = items[0].notification_id
        body = notification_body(subscription.id, notification_id, now, data)
        headers = {"Content-Type": endpoint.accept}
        if endpoint.accept == GEO_JSON:
            body["data"] = geojson.feature_collection(data, terms.compact_iri(LOCATION), None)
        context = subscription.context if subscription.context is not None else CORE_CONTEXT_URL
        if endpoint.accept == LD_JSON:
            body["@context"] = context
        else:
            headers["Link"] = jsonld.link_header(self.context_url(context))
        if claim.tenant:
            headers["NGSILD-Tenant"] = claim.tenant
        headers.update(endpoint.receiver_info)
        return _Request(endpoint.uri, headers, orjson.dumps(body), self._timeout(claim))

    def _current_entities(self, claim: Claim) -> list[Entity]:
        subscription = claim.subscription
        found: dict[str, Entity] = {}
        geo_q = subscription.geo_q
        for selector in subscription.entities:
            query = EntityQuery(
                ids=(selector.id,) if selector.id is not None else None,
                id_pattern=selector.id_pattern if selector.id is None else None,
                types=selector.types, q=subscription.q, scope=subscription.scope_q,
                geo=geo_q, geo_property=None if geo_q is None else geo_q.geoproperty,
                limit=self.config.periodic_limit,
            )
            for entity in self.store.query(claim.tenant, query).entities:
                found.setdefault(entity["id"], entity)
        return list(found.values())[: self.config.periodic_limit]


@asynccontextmanager
async def running(app: FastAPI, config: NotifierConfig | None = None) -> AsyncIterator[
        SubscriptionStore]:
    """Install subscriptions on `app.state.store` and run the notifier while inside.

    Needs `app.state.store` (a SqlStore), `app.state.contexts_resolver` and
    `app.state.contexts` (the context registry); sets `app.state.subscriptions`. The worker
    follows `config`, else `app.state.notifier_config` (tests set it), else the settings.
    """
    settings = app.state.settings
    store = app.state.store
    subscriptions = SubscriptionStore(store.db)
    from_bus = bool(getattr(app.state, "bus_durable", False))
    if from_bus:
        await app.state.bus.subscribe("cityhub.changes.>", SUBSCRIPTIONS_CONSUMER,
                                      _queue_from_bus(store, subscriptions))
    else:
        store.listeners.append(subscriptions.on_changes)
    app.state.subscriptions = subscriptions
    config = config or getattr(app.state, "notifier_config", None) or NotifierConfig(
        workers=settings.notify_workers, timeout_s=settings.notify_timeout_s)
    notifier = None
    if config.workers > 0:
        notifier = Notifier(subscriptions, store, app.state.contexts_resolver.term_map,
                            app.state.contexts.ensure_implicit, config,
                            gate=getattr(app.state, "notification_gate", None))
        await notifier.start()
    try:
        yield subscriptions
    finally:
        if notifier is not None:
            await notifier.stop()
        if not from_bus:
            store.listeners.remove(subscriptions.on_changes)


def _queue_from_bus(store: Any, subscriptions: SubscriptionStore) -> Callable[
        [Any], Awaitable[None]]:
    """The bus handler: queue the notifications one published change triggers."""
    from cityhub.api.ingestion import change_from_json
    from cityhub.devices.tables import first_delivery
    from cityhub.ngsild.payload import format_datetime
    from cityhub.store.service import utc_now

    me = f"{socket.gethostname()}:{os.getpid()}"

    def queue(change: Any, msg_id: str | None) -> None:
        with store.db.transaction(write=True) as conn:
            # a redelivery (its acknowledgement was lost) queues nothing twice
            if msg_id is None or first_delivery(conn, SUBSCRIPTIONS_CONSUMER, msg_id, me,
                                                format_datetime(utc_now())):
                subscriptions.on_changes(conn, [change])

    async def handle(message: Any) -> None:
        change = change_from_json(orjson.loads(message.data))
        await asyncio.to_thread(queue, change, message.msg_id)

    return handle
