"""Forwarding from the outbox to the hub: a `Sender` per transport (HTTP to /ingest/v1/batch,
or JetStream subject `cityhub.ingest.<tenant>`) and the loop that sends the oldest rows in
batches and deletes only what the hub acknowledged, backing off while it cannot."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import httpx
import orjson

from cityhub.bus import Bus, open_bus
from cityhub.bus.port import subject_token
from cityhub.edge.outbox import Outbox, Row

log = logging.getLogger(__name__)
_SECTION = {"measurement": "measurements", "aggregate": "aggregates", "alert": "alerts",
            "dead": "deadLetters"}


class Sender(Protocol):
    def send(self, tenant: str, body: dict[str, Any]) -> None:
        """Return once the hub holds the batch durably; raise otherwise."""
        ...

    def close(self) -> None: ...


class HttpSender:
    def __init__(self, hub_url: str, token: str | None, timeout_s: float = 30.0) -> None:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=hub_url, headers=headers, timeout=timeout_s)

    def send(self, tenant: str, body: dict[str, Any]) -> None:
        headers = {"NGSILD-Tenant": tenant} if tenant else {}
        response = self._client.post("/ingest/v1/batch", content=orjson.dumps(body),
                                     headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"hub answered {response.status_code}: {response.text[:200]}")

    def close(self) -> None:
        self._client.close()


class BusSender:
    """Publishes each batch on JetStream (message id = the outbox rows, so a retry is dropped
    by the stream); the hub's durable consumer `cityhub-ingest` ingests it."""

    def __init__(self, bus_url: str, edge_id: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._bus: Bus = open_bus(bus_url)
        self._edge_id = edge_id
        self._connected = False

    def send(self, tenant: str, body: dict[str, Any]) -> None:
        if not self._connected:
            self._loop.run_until_complete(asyncio.wait_for(self._bus.connect(), 10.0))
            self._connected = True
        msg_id = f"{self._edge_id}:{body['first']}-{body['last']}"
        self._loop.run_until_complete(asyncio.wait_for(self._bus.publish(
            f"cityhub.ingest.{subject_token(tenant)}", orjson.dumps(body), msg_id), 15.0))

    def close(self) -> None:
        if self._connected:
            self._loop.run_until_complete(self._bus.close())
        self._loop.close()


def batch_bodies(rows: list[Row]) -> dict[str, tuple[dict[str, Any], list[int]]]:
    """Per tenant: the batch body and the outbox rows it carries."""
    out: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for row in rows:
        body, seqs = out.setdefault(row.tenant, ({"tenant": row.tenant, "measurements": [],
                                                  "aggregates": [], "alerts": [],
                                                  "deadLetters": []}, []))
        body[_SECTION[row.kind]].append(row.body)
        seqs.append(row.seq)
    for body, seqs in out.values():
        body["first"], body["last"] = seqs[0], seqs[-1]
    return out


class Forwarder:
    """The forwarding thread (see module docstring); `kick()` sends without waiting."""

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
        delay = 0.0
        try:
            while not self._stop.is_set():
                if delay:
                    self._stop.wait(delay)
                sent = self.forward_once(sender)
                if sent is None:
                    delay = min(max(delay * 2, 0.1), self.retry_max_s)
                    continue
                delay = 0.0
                if sent < self.batch_size:
                    self._wake.wait(self.idle_s)
                    self._wake.clear()
        finally:
            sender.close()

    def forward_once(self, sender: Sender) -> int | None:
        """Send one batch; the rows sent, or None when the hub did not take it."""
        rows = self.outbox.take(self.batch_size)
        if not rows:
            return 0
        done = 0
        for tenant, (body, seqs) in batch_bodies(rows).items():
            try:
                sender.send(tenant, body)
            except Exception as error:
                self.failures += 1
                if self.hub_up:
                    log.warning("event=forward_failed rows=%d error=%r", len(seqs), str(error))
                self.hub_up = False
                return None
            self.outbox.delete(seqs)
            done += len(seqs)
        if not self.hub_up:
            log.info("event=forward_resumed")
        self.hub_up = True
        self.forwarded += done
        return done
