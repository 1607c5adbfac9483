"""Wires devices and the bus into a hub process (entered by the app's lifespan).

- `app.state.devices`: the device registry and ingestion (cityhub.devices.hub.DeviceHub).
- `app.state.bus`: the bus of `CITYHUB_BUS_URL` (memory:// by default, nats://... JetStream).
- Every entity change is published on `cityhub.changes.<tenant>.<operation>`. On JetStream
  the store's change listener writes each change to the `bus_outbox` table inside the write's
  own transaction, and a relay publishes and then deletes the rows (message id = row, so two
  relays publishing one row are deduplicated by JetStream): nothing committed is lost, nothing
  rolled back is published. On the in-process bus the listener hands changes over directly.
- On JetStream, edges may forward through `cityhub.ingest.<tenant>`; every hub process consumes
  it with the durable consumer `cityhub-ingest`, so the work is shared.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import orjson
from fastapi import FastAPI

from cityhub.api.routers.ingest import apply_batch
from cityhub.bus import Bus, BusMessage, open_bus
from cityhub.bus.port import subject_token
from cityhub.devices import tables
from cityhub.devices.hub import DeviceHub
from cityhub.store.database import Connection
from cityhub.store.port import Change

log = logging.getLogger(__name__)
CHANGES = "cityhub.changes"
INGEST = "cityhub.ingest"
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


class ChangePublisher:
    """Publishes every committed entity change on the bus (see module docstring)."""

    def __init__(self, app: FastAPI, bus: Bus, durable: bool) -> None:
        self.store, self.bus, self.durable = app.state.store, bus, durable
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def on_changes(self, conn: Connection, changes: list[Change]) -> None:
        if not changes:
            return
        if self.durable:
            tables.enqueue_bus(conn, [(change_subject(c), f"{c.tenant}|{c.entity_id}|{c.at}",
                                       change_json(c)) for c in changes])
            self.loop.call_soon_threadsafe(self.wake.set)
            return
        messages = [BusMessage(change_subject(c), orjson.dumps(change_json(c))) for c in changes]
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
    if durable:
        publisher.task = asyncio.create_task(publisher.relay(), name="cityhub-bus-relay")

        async def ingest(message: BusMessage) -> None:
            body = orjson.loads(message.data)
            await asyncio.to_thread(apply_batch, devices, str(body.get("tenant", "")), body,
                                    "edge-bus")

        await bus.subscribe(f"{INGEST}.>", "cityhub-ingest", ingest)
    log.info("event=ingestion_ready bus=%s", settings.bus_url.split("@")[-1])
    try:
        yield
    finally:
        store.listeners.remove(publisher.on_changes)
        if publisher.task is not None:
            publisher.task.cancel()
            await asyncio.gather(publisher.task, return_exceptions=True)
        await bus.close()
        devices.close()
