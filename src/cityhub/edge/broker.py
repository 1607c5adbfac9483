"""The embedded MQTT broker (amqtt) that `cityhub demo` starts when no Mosquitto is wanted.

    broker = await start_broker()          # 1883, or a free port when 1883 is taken
    print(broker.url)                      # mqtt://127.0.0.1:PORT
    ...
    await broker.stop()

`EmbeddedBroker.in_thread()` runs it on its own event loop in a thread, for callers that are
not async (the edge agent connects to it like to any broker).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


def free_port(host: str, preferred: int) -> int:
    """`preferred` if nobody listens there, else a free port the OS picks."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, preferred))
        except OSError:
            probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class EmbeddedBroker:
    host: str
    port: int
    _broker: Any = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}",
                                      "max_connections": 1000}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        }
        self._broker = Broker(config)
        await self._broker.start()
        log.info("event=broker_started url=%s", self.url)

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None

    @classmethod
    def in_thread(cls, host: str = "127.0.0.1", port: int = 1883) -> EmbeddedBroker:
        """Start a broker on its own loop in a daemon thread; returns once it listens."""
        broker = cls(host, free_port(host, port))

        def run() -> None:
            loop = broker._loop = asyncio.new_event_loop()
            loop.run_until_complete(broker.start())
            broker._ready.set()
            loop.run_forever()

        broker._thread = threading.Thread(target=run, name="cityhub-mqtt-broker", daemon=True)
        broker._thread.start()
        if not broker._ready.wait(15.0):
            raise RuntimeError("the embedded MQTT broker did not start")
        return broker

    def stop_thread(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(15.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5.0)


async def start_broker(host: str = "127.0.0.1", port: int = 1883) -> EmbeddedBroker:
    """Start the embedded broker on `port`, or on a free port when that one is taken."""
    broker = EmbeddedBroker(host, free_port(host, port))
    await broker.start()
    return broker
