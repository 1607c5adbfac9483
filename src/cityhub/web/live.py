"""Live change notices for the operations page: entity changes -> in-process fan-out.

`ChangeFeed` is the tiny interface the SSE endpoint depends on (publish a notice, subscribe a
bounded asyncio queue); `LocalFeed` is the in-process implementation. What feeds it is decided
in `cityhub.api.routers.ops`: the store's change listener on the in-process bus, a broadcast
listener on the Bus port (every hub process hears every process's changes) on NATS.

Notices carry ids, short type names and changed attribute names only, never values: the page
reads the values through the ordinary NGSI-LD API with the user's own token, so what it shows
follows the same access rules as every other client.

The store calls `listener` inside its write transaction (possibly in a worker thread), so
publishing only hands the notices to each subscriber's event loop and never blocks. It runs for
every entity written, so it does nothing at all while no page is subscribed, and otherwise hands
each subscriber one batch of notices per write instead of one callback per entity. A notice can
thus precede the commit, or name a write that is rolled back: harmless, because readers batch
notices for a moment and then read the entities again (a rolled-back write reads as unchanged).
From the bus, notices name committed changes only (the hub publishes through an outbox).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from cityhub.ngsild.model import DEFAULT_VOCAB, NGSI_LD
from cityhub.store.port import Change

QUEUE_SIZE = 5000


@dataclass(frozen=True)
class Notice:
    tenant: str
    id: str
    type: str
    operation: str
    attrs: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "op": self.operation, "attrs": list(self.attrs)}


class Subscription(Protocol):
    queue: asyncio.Queue[Notice | None]  # None: notices were dropped, the reader should reload


class ChangeFeed(Protocol):
    def publish(self, notice: Notice) -> None: ...

    def publish_all(self, notices: Sequence[Notice]) -> None:
        """Publish notices in order: what each subscriber gets is the same as from one
        `publish` per notice."""

    def listening(self) -> bool:
        """Whether anyone is subscribed (a notice published now would reach someone)."""

    def subscribe(self) -> Subscription: ...

    def unsubscribe(self, subscription: Subscription) -> None: ...


@lru_cache(maxsize=4096)  # a handful of types and attributes, named in every change
def short(iri: str) -> str:
    """The core-context short name of an expanded type or attribute IRI."""
    for prefix in (DEFAULT_VOCAB, NGSI_LD):
        if iri.startswith(prefix):
            return iri[len(prefix):]
    return iri


@dataclass(eq=False)
class _LocalSubscription:
    queue: asyncio.Queue[Notice | None]
    loop: asyncio.AbstractEventLoop


class LocalFeed:
    """Fan-out to every subscriber of this process; a slow subscriber gets a reload marker."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self._subscribers: set[_LocalSubscription] = set()
        self._lock = threading.Lock()
        self._queue_size = queue_size

    def subscribe(self) -> _LocalSubscription:
        sub = _LocalSubscription(asyncio.Queue(self._queue_size), asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def listening(self) -> bool:
        return bool(self._subscribers)

    def publish(self, notice: Notice) -> None:
        self.publish_all((notice,))

    def publish_all(self, notices: Sequence[Notice]) -> None:
        if not notices:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            try:
                sub.loop.call_soon_threadsafe(_offer_all, sub, notices)
            except RuntimeError:  # its loop is closed: the reader is gone
                self.unsubscribe(sub)


def _offer_all(sub: _LocalSubscription, notices: Sequence[Notice]) -> None:
    for notice in notices:
        _offer(sub, notice)


def _offer(sub: _LocalSubscription, notice: Notice) -> None:
    """Queue the notice; when the reader lags a full queue behind, replace it by a reload."""
    try:
        sub.queue.put_nowait(notice)
    except asyncio.QueueFull:
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)


def listener(feed: ChangeFeed) -> Callable[[Any, list[Change]], None]:
    """A store change listener (called with the connection and the changes) feeding `feed`."""

    def on_changes(_conn: Any, changes: list[Change]) -> None:
        if not feed.listening():
            return  # no page open: no notice to build
        notices = []
        for change in changes:
            entity = change.entity or change.previous
            types = entity["type"] if entity else []
            notices.append(Notice(
                tenant=change.tenant, id=change.entity_id,
                type=short(types[0]) if types else "",
                operation=change.operation, attrs=tuple(map(short, change.attrs)),
            ))
        feed.publish_all(notices)

    return on_changes
