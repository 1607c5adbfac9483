"""The bus contract, on the in-process bus and on the real NATS JetStream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from cityhub.bus import Bus, BusMessage, open_bus, subject_matches
from tests.bus.namespaces import NATS, drop_namespace, new_namespace
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


async def test_namespaces_keep_deployments_apart() -> None:
    """nats://host/<namespace>: a stream and subjects of its own; handlers see plain subjects."""
    need_service("NATS", "127.0.0.1", 4222)
    names = [f"t{uuid.uuid4().hex[:8]}" for _ in range(2)]
    first, second = (open_bus(f"nats://127.0.0.1:4222/{n}") for n in names)
    await first.connect()
    await second.connect()
    got: list[BusMessage] = []
    arrived = asyncio.Event()

    async def handle(message: BusMessage) -> None:
        got.append(message)
        arrived.set()

    try:
        await second.subscribe("cityhub.changes.>", "d", handle)
        await first.publish("cityhub.changes.x", b"not for you")
        await second.publish("cityhub.changes.y", b"yours")
        await asyncio.wait_for(arrived.wait(), 10)
        await asyncio.sleep(0.3)
        assert [(m.subject, m.data) for m in got] == [("cityhub.changes.y", b"yours")]
    finally:
        await first.close()
        await second.close()
        import nats

        connection = await nats.connect("nats://127.0.0.1:4222")
        for name in names:
            await connection.jetstream().delete_stream(f"CITYHUB_{name}")
        await connection.close()


def test_a_bad_namespace_is_refused() -> None:
    with pytest.raises(ValueError, match="namespace"):
        open_bus("nats://127.0.0.1:4222/a.b")


# -- broadcast listeners ----------------------------------------------------------------------


@pytest.fixture(params=["memory", "nats"])
async def bus_pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, Bus]]:
    """Two processes' view of one bus: two connections to one NATS namespace of the test's
    own (deleted afterwards), or one in-process bus seen twice."""
    if request.param == "memory":
        shared = open_bus("memory://")
        await shared.connect()
        yield shared, shared
        await shared.close()
        return
    name = new_namespace()
    pair = (open_bus(f"{NATS}/{name}"), open_bus(f"{NATS}/{name}"))
    for one in pair:
        await one.connect()
    yield pair
    for one in pair:
        await one.close()
    await drop_namespace(name)


class Heard:
    """What one listener got, with a wait for a count."""

    def __init__(self) -> None:
        self.messages: list[BusMessage] = []
        self._changed = asyncio.Event()

    async def __call__(self, message: BusMessage) -> None:
        self.messages.append(message)
        self._changed.set()

    async def until(self, count: int) -> list[bytes]:
        async def wait() -> None:
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), 10)
        return [m.data for m in self.messages]


async def test_every_listener_gets_every_message_from_now_on_in_order(
        bus_pair: tuple[Bus, Bus]) -> None:
    first, second = bus_pair
    await first.publish("cityhub.changes.x.update", b"before", "before")
    ears = [Heard(), Heard(), Heard()]
    await first.listen("cityhub.changes.>", ears[0])
    await second.listen("cityhub.changes.>", ears[1])
    await second.listen("cityhub.changes.*.create", ears[2])
    shared = Heard()
    await second.subscribe("cityhub.changes.>", f"d{uuid.uuid4().hex[:8]}", shared)
    await first.publish_many([BusMessage("cityhub.changes.x.update", str(n).encode(), f"m{n}")
                              for n in range(50)])
    await second.publish("cityhub.changes.x.update", b"7", "m7")  # a repeat: dropped
    await first.publish("cityhub.changes.x.create", b"last", "last")
    expected = [str(n).encode() for n in range(50)] + [b"last"]
    assert await ears[0].until(51) == expected
    assert await ears[1].until(51) == expected
    assert await ears[2].until(1) == [b"last"]
    # the durable subscription still gets them (on JetStream, a new one replays the stream)
    assert set(expected) <= set(await shared.until(51 if bus_pair[0] is bus_pair[1] else 52))
    assert ears[0].messages[0] == BusMessage("cityhub.changes.x.update", b"0", "m0")
    await asyncio.sleep(0.3)  # room for the repeat or the early message to show up
    assert len(ears[0].messages) == len(ears[1].messages) == 51
    assert len(ears[2].messages) == 1


async def test_a_failing_listener_loses_that_message_and_goes_on(
        bus_pair: tuple[Bus, Bus]) -> None:
    first, second = bus_pair
    got: list[bytes] = []
    done = asyncio.Event()

    async def fragile(message: BusMessage) -> None:
        if message.data == b"bad":
            raise RuntimeError("cannot handle this one")
        got.append(message.data)
        if message.data == b"after":
            done.set()

    await second.listen("cityhub.changes.>", fragile)
    for data in (b"before", b"bad", b"after"):
        await first.publish("cityhub.changes.y.update", data)
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.3)
    assert got == [b"before", b"after"]
