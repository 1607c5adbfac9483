"""Forwarding from the outbox to the hub: a `Sender` per transport (HTTP to /ingest/v1/batch,
or JetStream subject `cityhub.ingest.<tenant>`) and the loop that sends the oldest rows in
batches and deletes only what the hub acknowledged, backing off while it cannot."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import httpx
import orjson

from cityhub.bus import Bus, open_bus
from cityhub.bus.port import subject_token
from cityhub.edge.outbox import Outbox, Row

log = logging.getLogger(__name__)
_SECTION = {"measurement": "measurements", "aggregate": "aggregates", "alert": "alerts",
            "dead": "deadLetters", "unverified": "unverified"}
IN_FLIGHT = 2  # batches out at once (see Forwarder)


@dataclass
class Batch:
    """One tenant's rows as the body the hub takes: the rows' stored JSON joined as they are
    (never parsed here), `seqs` the outbox rows it carries."""

    tenant: str
    seqs: list[int]
    data: bytes

    @property
    def first(self) -> int:
        return self.seqs[0]

    @property
    def last(self) -> int:
        return self.seqs[-1]


class Sender(Protocol):
    #: batches this sender may carry at once (HTTP: two, JetStream: its one event loop)
    parallel: int

    def send(self, batch: Batch) -> None:
        """Return once the hub holds the batch durably; raise otherwise."""
        ...

    def close(self) -> None: ...


def batch_id(edge_id: str, batch: Batch) -> str:
    """The batch's id at the hub, the same over both transports: the edge, its outbox, the
    rows. A batch sent again (its answer was lost) is then skipped whole by the hub."""
    return f"{edge_id}:{batch.first}-{batch.last}"


class HttpSender:
    parallel = IN_FLIGHT

    def __init__(self, hub_url: str, token: str | None, edge_id: str,
                 timeout_s: float = 30.0) -> None:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=hub_url, headers=headers, timeout=timeout_s)
        self._edge_id = edge_id

    def send(self, batch: Batch) -> None:
        headers = {"Cityhub-Batch": batch_id(self._edge_id, batch)}
        if batch.tenant:
            headers["NGSILD-Tenant"] = batch.tenant
        response = self._client.post("/ingest/v1/batch", content=batch.data, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"hub answered {response.status_code}: {response.text[:200]}")

    def close(self) -> None:
        self._client.close()


class BusSender:
    """Publishes each batch on JetStream (message id = the edge, its outbox and the rows, so a
    retry is dropped by the stream); the hub's durable consumer `cityhub-ingest` ingests it."""

    parallel = 1

    def __init__(self, bus_url: str, edge_id: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._bus: Bus = open_bus(bus_url)
        self._edge_id = edge_id
        self._connected = False

    def send(self, batch: Batch) -> None:
        if not self._connected:
            self._loop.run_until_complete(asyncio.wait_for(self._bus.connect(), 10.0))
            self._connected = True
        self._loop.run_until_complete(asyncio.wait_for(self._bus.publish(
            f"cityhub.ingest.{subject_token(batch.tenant)}", batch.data,
            batch_id(self._edge_id, batch)), 15.0))

    def close(self) -> None:
        if self._connected:
            self._loop.run_until_complete(self._bus.close())
        self._loop.close()


def batch_bodies(rows: list[Row]) -> list[Batch]:
    """Per tenant, the batch of these rows (bodies as `{"tenant", "first", "last",
    "measurements": [...], "aggregates", "alerts", "deadLetters", "unverified"}`)."""
    groups: dict[str, tuple[dict[str, list[bytes]], list[int]]] = {}
    for row in rows:
        sections, seqs = groups.setdefault(row.tenant, ({s: [] for s in _SECTION.values()}, []))
        sections[_SECTION[row.kind]].append(row.raw)
        seqs.append(row.seq)
    out = []
    for tenant, (sections, seqs) in groups.items():
        parts = [b'{"tenant":' + orjson.dumps(tenant), b'"first":' + str(seqs[0]).encode(),
                 b'"last":' + str(seqs[-1]).encode()]
        parts.extend(b'"' + name.encode() + b'":[' + b",".join(items) + b"]"
                     for name, items in sections.items())
        out.append(Batch(tenant, seqs, b",".join(parts) + b"}"))
    return out


class Forwarder:
    """The forwarding thread (see module docstring); `kick()` sends without waiting.

    Pipelined: up to IN_FLIGHT batches are out at once (the next one is taken from the outbox
    and sent while the hub writes the previous one). Each batch's rows are deleted only when
    the hub acknowledged that batch; when one fails, the others still out are waited for
    (those acknowledged are deleted) and sending starts again from the oldest row."""

    def __init__(self, outbox: Outbox, sender_factory: Callable[[], Sender], batch_size: int,
                 retry_max_s: float, idle_s: float = 0.05) -> None:
        self.outbox, self.batch_size = outbox, batch_size
        self.retry_max_s, self.idle_s = retry_max_s, idle_s
        self._sender_factory = sender_factory
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-forwarder", daemon=True)
        self.forwarded = 0
        self.failures = 0
        self.hub_up = True

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10.0)

    def _run(self) -> None:
        sender = self._sender_factory()
        pool = ThreadPoolExecutor(max(1, sender.parallel), thread_name_prefix="edge-send")
        delay = 0.0
        try:
            while not self._stop.is_set():
                if delay:
                    self._stop.wait(delay)
                sent = self.forward(sender, pool)
                if sent is None:
                    delay = min(max(delay * 2, 0.1), self.retry_max_s)
                    continue
                delay = 0.0
                self._wake.wait(self.idle_s)  # the outbox is drained: wait for more
                self._wake.clear()
        finally:
            pool.shutdown(wait=True)
            sender.close()

    def forward(self, sender: Sender, pool: Executor) -> int | None:
        """Send batches, up to IN_FLIGHT at a time, until the outbox has no full batch left
        (or the stop); the rows the hub took, or None when a batch failed."""
        out: deque[tuple[Future[None], Batch]] = deque()
        after, done, failed, drained = 0, 0, False, False
        while True:
            while not (failed or drained or self._stop.is_set()) and len(out) < IN_FLIGHT:
                rows = self.outbox.take(self.batch_size, after)
                if rows:
                    after = rows[-1].seq
                    out.extend((pool.submit(sender.send, b), b) for b in batch_bodies(rows))
                drained = len(rows) < self.batch_size
            if not out:
                break
            future, batch = out.popleft()
            try:
                future.result()
            except Exception as error:
                self.failures += 1
                if self.hub_up:
                    log.warning("event=forward_failed rows=%d error=%r", len(batch.seqs),
                                str(error))
                self.hub_up, failed = False, True
                continue
            self.outbox.delete(batch.seqs)
            done += len(batch.seqs)
            self.forwarded += len(batch.seqs)
        if failed:
            return None
        if done and not self.hub_up:
            log.info("event=forward_resumed")
            self.hub_up = True
        return done
