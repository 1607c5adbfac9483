"""The NATS JetStream bus: one stream (`CITYHUB`, subjects `cityhub.>`, kept 24 h, duplicates
dropped by message id within 10 minutes); durable pull consumers shared by every process that
subscribes with the same durable name. A handler that raises has its message redelivered.
A listener is an ephemeral ordered push consumer starting at the next message (DeliverPolicy
NEW): every process gets every message the stream takes from then on, once (repeated message
ids were dropped by the stream) and in stream order.

A path in the URL names a namespace (`nats://host:4222/district-7`): its own stream
(`CITYHUB_district-7`) over subjects `district-7.cityhub.>`, so several hub deployments (or test
runs) share one server without seeing each other. Handlers see the subjects without it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any
from urllib.parse import urlparse

import nats
from nats.js.api import DeliverPolicy, RetentionPolicy, StreamConfig
from nats.js.errors import NotFoundError

from cityhub.bus.port import BusMessage, Handler

log = logging.getLogger(__name__)
STREAM = "CITYHUB"
SUBJECTS = ["cityhub.>"]
NAMESPACE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FETCH = 200
REDELIVER_S = 1.0
CLOSE_WAIT_S = 2.0


class JetStreamBus:
    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        namespace = parsed.path.strip("/")
        if namespace and not NAMESPACE.match(namespace):
            raise ValueError(f"bus namespace {namespace!r}: 1-64 letters, digits, '-', '_'")
        self.url = parsed._replace(path="").geturl()
        self.stream = f"{STREAM}_{namespace}" if namespace else STREAM
        self.prefix = f"{namespace}." if namespace else ""
        self._nc: Any = None
        self._js: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._subs: list[Any] = []

    async def connect(self) -> None:
        self._nc = await nats.connect(self.url, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                      connect_timeout=3)
        self._js = self._nc.jetstream(timeout=10)
        config = StreamConfig(name=self.stream, subjects=[self.prefix + s for s in SUBJECTS],
                              max_age=24 * 3600.0,
                              duplicate_window=600.0, retention=RetentionPolicy.LIMITS)
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(config)

    async def publish(self, subject: str, data: bytes, msg_id: str | None = None) -> None:
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        await self._js.publish(self.prefix + subject, data, stream=self.stream, headers=headers)

    async def publish_many(self, items: list[BusMessage]) -> None:
        for start in range(0, len(items), 500):
            await asyncio.gather(*(self.publish(i.subject, i.data, i.msg_id)
                                   for i in items[start:start + 500]))

    async def subscribe(self, subject: str, durable: str, handler: Handler) -> None:
        sub = await self._js.pull_subscribe(self.prefix + subject, durable=durable,
                                            stream=self.stream)
        self._subs.append(sub)
        self._tasks.append(asyncio.create_task(self._consume(sub, durable, handler)))

    async def listen(self, subject: str, handler: Handler) -> None:
        async def hear(message: Any) -> None:
            headers = message.headers or {}
            try:
                await handler(BusMessage(message.subject.removeprefix(self.prefix), message.data,
                                         headers.get("Nats-Msg-Id")))
            except Exception:
                log.exception("event=bus_listener_failed subject=%s", message.subject)

        self._subs.append(await self._js.subscribe(
            self.prefix + subject, stream=self.stream, cb=hear, ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW))

    async def _consume(self, sub: Any, durable: str, handler: Handler) -> None:
        # nats-py's fetch can turn a cancellation into a timeout, which the loop would take
        # for "no messages yet": the flag ends it at the next turn (at most the fetch timeout).
        while not self._closing:
            try:
                messages = await sub.fetch(FETCH, timeout=1.0)
            except TimeoutError:  # nats-py raises its own TimeoutError or, at times, asyncio's
                continue
            except Exception:
                log.warning("event=bus_fetch_failed durable=%s", durable, exc_info=True)
                await asyncio.sleep(REDELIVER_S)
                continue
            for message in messages:
                headers = message.headers or {}
                try:
                    await handler(BusMessage(message.subject.removeprefix(self.prefix),
                                             message.data,
                                             headers.get("Nats-Msg-Id")))
                except Exception:
                    log.exception("event=bus_handler_failed durable=%s subject=%s", durable,
                                  message.subject)
                    await message.nak(delay=REDELIVER_S)
                else:
                    await message.ack()

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # a fetch cancelled at the wrong moment can hang in nats-py: bounded
            await asyncio.wait(self._tasks, timeout=CLOSE_WAIT_S)
        self._tasks.clear()
        # A pull subscription whose fetch was cancelled never drains: drain() would wait its
        # whole timeout (30 s). Unsubscribe them (and the listeners' ephemeral consumers) first;
        # publishes were acknowledged already.
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None
