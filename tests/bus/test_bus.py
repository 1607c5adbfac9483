"""The bus contract, on the in-process bus and on the real NATS JetStream."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from cityhub.bus import Bus, BusMessage, open_bus, subject_matches
from tests.conftest import need_service


@pytest.fixture(params=["memory", "nats"])
async def bus(request: pytest.FixtureRequest) -> Bus:
    if request.param == "nats":
        need_service("NATS", "127.0.0.1", 4222)
        opened = open_bus("nats://127.0.0.1:4222")
    else:
        opened = open_bus("memory://")
    await opened.connect()
    yield opened  # type: ignore[misc]
    await opened.close()


async def test_durable_subscribers_share_and_repeats_are_dropped(bus: Bus) -> None:
    prefix = f"cityhub.test{uuid.uuid4().hex[:8]}"
    durable = f"d{uuid.uuid4().hex[:8]}"
    got: list[tuple[str, bytes]] = []
    done = asyncio.Event()

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(message: BusMessage) -> None:
            got.append((name, message.data))
            if len(got) >= 20:
                done.set()
        return handle

    await bus.subscribe(f"{prefix}.>", durable, handler("a"))
    await bus.subscribe(f"{prefix}.>", durable, handler("b"))
    await bus.publish_many([BusMessage(f"{prefix}.x", str(n).encode(), f"{prefix}-{n}")
                            for n in range(20)])
    await bus.publish(f"{prefix}.x", b"0", f"{prefix}-0")  # a repeat
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.3)
    assert sorted(int(d) for _, d in got) == list(range(20))


async def test_a_failing_handler_gets_the_message_again(bus: Bus) -> None:
    prefix = f"cityhub.test{uuid.uuid4().hex[:8]}"
    seen: list[bytes] = []
    done = asyncio.Event()

    async def flaky(message: BusMessage) -> None:
        seen.append(message.data)
        if len(seen) == 1:
            raise RuntimeError("not yet")
        done.set()

    await bus.subscribe(f"{prefix}.>", f"d{uuid.uuid4().hex[:8]}", flaky)
    await bus.publish(f"{prefix}.y", b"hello")
    await asyncio.wait_for(done.wait(), 10)
    assert seen == [b"hello", b"hello"]


def test_subject_patterns() -> None:
    assert subject_matches("cityhub.>", "cityhub.changes.x.create")
    assert subject_matches("cityhub.*.x", "cityhub.a.x")
    assert not subject_matches("cityhub.*.x", "cityhub.a.b.x")
    assert not subject_matches("cityhub.>", "cityhub")
