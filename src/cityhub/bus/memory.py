"""The in-process bus (embedded default): durable names share deliveries round-robin, a failing
handler gets the message again after a pause, repeated message ids are dropped (last 100,000);
listeners each get every message (one queue and task per listener, so a slow one delays no
other)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from cityhub.bus.port import BusMessage, Handler, subject_matches

log = logging.getLogger(__name__)
RETRY_S = 0.5
DEDUPE_WINDOW = 100_000


class _Durable:
    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.queue: asyncio.Queue[BusMessage] = asyncio.Queue()
        self.workers: list[asyncio.Task[None]] = []


class _Listener:
    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.queue: asyncio.Queue[BusMessage] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None


class MemoryBus:
    def __init__(self) -> None:
        self._durables: dict[str, _Durable] = {}
        self._listeners: list[_Listener] = []
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._closed = False

    async def connect(self) -> None:
        return None

    async def publish(self, subject: str, data: bytes, msg_id: str | None = None) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")
        if msg_id is not None:
            if msg_id in self._seen:
                return
            self._seen[msg_id] = None
            if len(self._seen) > DEDUPE_WINDOW:
                self._seen.popitem(last=False)
        message = BusMessage(subject, data, msg_id)
        for durable in self._durables.values():
            if subject_matches(durable.subject, subject):
                durable.queue.put_nowait(message)
        for listener in self._listeners:
            if subject_matches(listener.subject, subject):
                listener.queue.put_nowait(message)

    def has_any_subscriber(self) -> bool:
        """Whether anything subscribes or listens at all (a publisher's cheapest test)."""
        return bool(self._durables or self._listeners)

    def has_subscriber(self, subject: str) -> bool:
        """Whether a message on `subject` would reach a subscriber now; nothing else keeps
        it, so a publisher may skip building one that would not."""
        return any(subject_matches(d.subject, subject) for d in self._durables.values()) or \
            any(subject_matches(each.subject, subject) for each in self._listeners)

    async def publish_many(self, items: list[BusMessage]) -> None:
        for item in items:
            await self.publish(item.subject, item.data, item.msg_id)

    async def subscribe(self, subject: str, durable: str, handler: Handler) -> None:
        group = self._durables.setdefault(durable, _Durable(subject))
        group.workers.append(asyncio.create_task(self._work(group, handler)))

    async def _work(self, group: _Durable, handler: Handler) -> None:
        while True:
            message = await group.queue.get()
            try:
                await handler(message)
            except Exception:
                log.exception("event=bus_handler_failed subject=%s", message.subject)
                await asyncio.sleep(RETRY_S)
                group.queue.put_nowait(message)

    async def listen(self, subject: str, handler: Handler) -> None:
        listener = _Listener(subject)
        listener.task = asyncio.create_task(self._hear(listener, handler))
        self._listeners.append(listener)

    async def _hear(self, listener: _Listener, handler: Handler) -> None:
        while True:
            message = await listener.queue.get()
            try:
                await handler(message)
            except Exception:
                log.exception("event=bus_listener_failed subject=%s", message.subject)

    async def close(self) -> None:
        self._closed = True
        tasks = [t for d in self._durables.values() for t in d.workers]
        tasks += [listener.task for listener in self._listeners if listener.task is not None]
        self._listeners.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._durables.clear()
