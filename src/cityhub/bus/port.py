"""The `Bus` port: publish messages on subjects, and consume them with durable, shared
subscriptions (every subscriber of one durable name shares its messages; a handler that raises
gets the message again later) or with broadcast listeners (every listener, in every process,
gets every message published from the moment it listens; nothing is redelivered). Subjects are
dot-separated; `*` matches one token, `>` the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class BusMessage:
    subject: str
    data: bytes
    msg_id: str | None = None


Handler = Callable[[BusMessage], Awaitable[None]]


class Bus(Protocol):
    async def connect(self) -> None: ...

    async def publish(self, subject: str, data: bytes, msg_id: str | None = None) -> None:
        """Return once the bus holds the message durably (a repeated msg_id is dropped)."""
        ...

    async def publish_many(self, items: list[BusMessage]) -> None:
        """Like `publish` for each, concurrently; raises if any was not taken."""
        ...

    async def subscribe(self, subject: str, durable: str, handler: Handler) -> None:
        """Deliver messages on `subject` to `handler` until `close`; shared per `durable`."""
        ...

    async def listen(self, subject: str, handler: Handler) -> None:
        """Deliver every message on `subject` published from now on to `handler`, in the order
        the bus holds them, until `close`; each listener (in each process) gets them all. For
        state kept per process (caches, live views), not for work: a handler that raises is
        logged and the message is not delivered again; nothing published before is replayed."""
        ...

    async def close(self) -> None: ...


def subject_matches(pattern: str, subject: str) -> bool:
    want, have = pattern.split("."), subject.split(".")
    for index, part in enumerate(want):
        if part == ">":
            return len(have) > index
        if index >= len(have) or (part != "*" and part != have[index]):
            return False
    return len(want) == len(have)


def subject_token(text: str) -> str:
    """A subject token for free text (tenant names): no dots, spaces or wildcards."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
    return cleaned or "_"
