"""Wires devices and the bus into a hub process (entered by the app's lifespan).

- `app.state.devices`: the device registry and ingestion (cityhub.devices.hub.DeviceHub).
- `app.state.bus`: the bus of `CITYHUB_BUS_URL` (memory:// by default, nats://... JetStream).
- Every entity change is published on `cityhub.changes.<tenant>.<operation>`. On JetStream
  the store's change listener writes each change to the `bus_outbox` table inside the write's
  own transaction, and a relay publishes and then deletes the rows (message id = row, so two
  relays publishing one row are deduplicated by JetStream): nothing committed is lost, nothing
  rolled back is published. On the in-process bus the listener hands changes over directly.
- On JetStream, edges may forward through `cityhub.ingest.<tenant>`; every hub process consumes
  it with the durable consumer `cityhub-ingest`, so the work is shared. Each handled batch id
  is recorded in `bus_consumed` with the process that handled it (redeliveries skipped).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

import orjson
from fastapi import FastAPI

from cityhub.api.routers.ingest import apply_batch
from cityhub.bus import Bus, BusMessage, open_bus
from cityhub.bus.memory import MemoryBus
from cityhub.bus.port import subject_token
from cityhub.devices import tables
from cityhub.devices.hub import BATCH_CONSUMER, DeviceHub
from cityhub.devices.messages import format_utc
from cityhub.store.database import Connection
from cityhub.store.port import Change
from cityhub.store.service import utc_now

log = logging.getLogger(__name__)
CHANGES = "cityhub.changes"
INGEST = "cityhub.ingest"
CONSUMED_KEPT_S = 25 * 3600  # longer than the stream keeps messages (24 h) or an edge retries
PRUNE_EVERY_S = 600
RELAY_BATCH = 1000


def change_json(change: Change) -> dict[str, Any]:
    return {"tenant": change.tenant, "id": change.entity_id, "operation": change.operation,
            "attrs": list(change.attrs), "entity": change.entity, "previous": change.previous,
            "at": change.at}


def change_from_json(data: dict[str, Any]) -> Change:
    return Change(data["tenant"], data["id"], data["operation"], tuple(data["attrs"]),
                  data["entity"], data["previous"], data["at"])


def change_subject(change: Change) -> str:
    return f"{CHANGES}.{subject_token(change.tenant)}.{change.operation}"


def relay_order(msg_id: str | None) -> int | None:
    """The outbox row number of a change the relay published (its message id starts with it):
    two changes of one entity get rising numbers in commit order (the second write waits for
    the first's row lock before it adds its row). None for other messages."""
    head = (msg_id or "").partition("|")[0]
    return int(head) if head.isdigit() else None


class ChangePublisher:
    """Publishes every committed entity change on the bus (see module docstring)."""

    def __init__(self, app: FastAPI, bus: Bus, durable: bool) -> None:
        self.store, self.bus, self.durable = app.state.store, bus, durable
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()

    def on_changes(self, conn: Connection, changes: list[Change]) -> None:
        if not changes:
            return
        if self.durable:
            tables.enqueue_bus(conn, [(change_subject(c), f"{c.tenant}|{c.entity_id}|{c.at}",
                                       change_json(c)) for c in changes])
            self.loop.call_soon_threadsafe(self.wake.set)
            return
        # The in-process bus keeps nothing: a change no one subscribes to is not serialised.
        wanted = None
        if isinstance(self.bus, MemoryBus):
            if not self.bus.has_any_subscriber():
                return
            wanted = self.bus.has_subscriber
        subjects = [(change_subject(c), c) for c in changes]
        messages = [BusMessage(subject, orjson.dumps(change_json(c))) for subject, c in subjects
                    if wanted is None or wanted(subject)]
        if not messages:
            return
        self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(
            self.bus.publish_many(messages)))

    async def relay(self) -> None:
        while True:
            try:
                moved = await self._relay_once()
            except Exception:
                log.warning("event=bus_relay_failed", exc_info=True)
                moved = 0
            if moved < RELAY_BATCH:
                self.wake.clear()
                with suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await self.wake.wait()

    async def prune(self) -> None:
        """Every 10 minutes, forget handled message and batch ids older than anything that can
        come again (JetStream redeliveries, edges' HTTP retries): on any bus, since edges post
        batch ids over HTTP too."""
        def forget() -> None:
            before = format_utc(utc_now() - timedelta(seconds=CONSUMED_KEPT_S))
            with self.store.db.transaction(write=True) as conn:
                tables.forget_consumed(conn, before)

        while True:
            try:
                await asyncio.to_thread(forget)
            except Exception:
                log.warning("event=consumed_prune_failed", exc_info=True)
            await asyncio.sleep(PRUNE_EVERY_S)

    async def _relay_once(self) -> int:
        def read() -> list[Any]:
            with self.store.db.transaction(write=False) as conn:
                return list(conn.execute("SELECT seq, subject, msg_id, body FROM bus_outbox "
                                         "ORDER BY seq LIMIT ?", (RELAY_BATCH,)).fetchall())

        rows = await asyncio.to_thread(read)
        if not rows:
            return 0
        await self.bus.publish_many([BusMessage(r[1], r[3].encode(), f"{r[0]}|{r[2]}")
                                     for r in rows])

        def delete() -> None:
            with self.store.db.transaction(write=True) as conn:
                seqs = [r[0] for r in rows]
                for start in range(0, len(seqs), 500):
                    chunk = seqs[start:start + 500]
                    conn.execute("DELETE FROM bus_outbox WHERE seq IN "  # noqa: S608
                                 f"({', '.join('?' for _ in chunk)})", chunk)

        await asyncio.to_thread(delete)
        return len(rows)


def ingest_from_bus(devices: DeviceHub, message: BusMessage) -> None:
    """One edge batch from JetStream; its message id is the batch's id, so a redelivery (lost
    acknowledgement, or a crash half-way) adds nothing twice (see `apply_batch`)."""
    body = orjson.loads(message.data)
    apply_batch(devices, str(body.get("tenant", "")), body, "edge-bus", message.msg_id)


def freeze_start_up() -> None:
    """What start-up built (modules, the app, its schemas) lives as long as the process: take
    it out of the cyclic collector's generations, so that the collections large batches set off
    walk only what requests allocate (about a quarter of the ingest CPU otherwise). Once per
    process, after a collection: a process that builds many apps (tests) freezes no garbage."""
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True


_frozen = False


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    settings, store = app.state.settings, app.state.store
    devices = DeviceHub(store)
    bus = open_bus(settings.bus_url)
    await bus.connect()
    durable = not settings.bus_url.startswith("memory:")
    app.state.devices, app.state.bus, app.state.bus_durable = devices, bus, durable
    publisher = ChangePublisher(app, bus, durable)
    store.listeners.append(publisher.on_changes)
    tasks = [asyncio.create_task(publisher.prune(), name="cityhub-consumed-prune")]
    if durable:
        tasks.append(asyncio.create_task(publisher.relay(), name="cityhub-bus-relay"))

        await bus.subscribe(f"{INGEST}.>", BATCH_CONSUMER, lambda message: asyncio.to_thread(
            ingest_from_bus, devices, message))
    log.info("event=ingestion_ready bus=%s", settings.bus_url.split("@")[-1])
    freeze_start_up()
    try:
        yield
    finally:
        store.listeners.remove(publisher.on_changes)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.close()
        devices.close()
