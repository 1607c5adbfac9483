"""The NATS JetStream bus: one stream (`CITYHUB`, subjects `cityhub.>`, kept 24 h, duplicates
dropped by message id within 10 minutes); durable pull consumers shared by every process that
subscribes with the same durable name. A handler that raises has its message redelivered."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import RetentionPolicy, StreamConfig
from nats.js.errors import NotFoundError

from cityhub.bus.port import BusMessage, Handler

log = logging.getLogger(__name__)
STREAM = "CITYHUB"
SUBJECTS = ["cityhub.>"]
FETCH = 200
REDELIVER_S = 1.0


class JetStreamBus:
    def __init__(self, url: str, stream: str = STREAM) -> None:
        self.url, self.stream = url, stream
        self._nc: Any = None
        self._js: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self) -> None:
        self._nc = await nats.connect(self.url, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                      connect_timeout=3)
        self._js = self._nc.jetstream(timeout=10)
        config = StreamConfig(name=self.stream, subjects=SUBJECTS, max_age=24 * 3600.0,
                              duplicate_window=600.0, retention=RetentionPolicy.LIMITS)
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(config)

    async def publish(self, subject: str, data: bytes, msg_id: str | None = None) -> None:
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        await self._js.publish(subject, data, stream=self.stream, headers=headers)

    async def publish_many(self, items: list[BusMessage]) -> None:
        for start in range(0, len(items), 500):
            await asyncio.gather(*(self.publish(i.subject, i.data, i.msg_id)
                                   for i in items[start:start + 500]))

    async def subscribe(self, subject: str, durable: str, handler: Handler) -> None:
        sub = await self._js.pull_subscribe(subject, durable=durable, stream=self.stream)
        self._tasks.append(asyncio.create_task(self._consume(sub, durable, handler)))

    async def _consume(self, sub: Any, durable: str, handler: Handler) -> None:
        while True:
            try:
                messages = await sub.fetch(FETCH, timeout=1.0)
            except NatsTimeout:
                continue
            except Exception:
                log.warning("event=bus_fetch_failed durable=%s", durable, exc_info=True)
                await asyncio.sleep(REDELIVER_S)
                continue
            for message in messages:
                headers = message.headers or {}
                try:
                    await handler(BusMessage(message.subject, message.data,
                                             headers.get("Nats-Msg-Id")))
                except Exception:
                    log.exception("event=bus_handler_failed durable=%s subject=%s", durable,
                                  message.subject)
                    await message.nak(delay=REDELIVER_S)
                else:
                    await message.ack()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None
