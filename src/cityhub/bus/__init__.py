"""The event bus: the `Bus` port (publish, durable subscribe) and its adapters, looked up by URL
scheme (`memory://` in-process, `nats://` JetStream)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from cityhub.bus.port import Bus, BusMessage, Handler, subject_matches

BACKENDS: dict[str, Callable[[str], Bus]] = {}


def register_backend(scheme: str) -> Callable[[Callable[[str], Bus]], Callable[[str], Bus]]:
    def add(factory: Callable[[str], Bus]) -> Callable[[str], Bus]:
        BACKENDS[scheme] = factory
        return factory
    return add


@register_backend("memory")
def _memory(url: str) -> Bus:
    from cityhub.bus.memory import MemoryBus

    return MemoryBus()


@register_backend("nats")
def _nats(url: str) -> Bus:
    from cityhub.bus.nats import JetStreamBus

    return JetStreamBus(url)


def open_bus(url: str) -> Bus:
    """The bus for a URL: memory:// (embedded default) or nats://host:4222 (JetStream)."""
    factory = BACKENDS.get(urlparse(url).scheme)
    if factory is None:
        raise ValueError(f"unsupported bus URL {url!r}: use memory:// or nats://host:port")
    return factory(url)


__all__ = ["Bus", "BusMessage", "Handler", "open_bus", "register_backend", "subject_matches"]
