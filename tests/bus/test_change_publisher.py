"""Entity changes on the in-process bus: a subscriber of `cityhub.changes.>` gets every
committed change; the publisher serialises a change only when some subscriber wants it."""

from __future__ import annotations

import asyncio

import httpx
import orjson

from cityhub.api.app import create_app
from cityhub.bus import BusMessage
from cityhub.bus.memory import MemoryBus
from cityhub.bus.port import Handler
from cityhub.config import Settings

NGSI = "/ngsi-ld/v1"
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def collector(count: int) -> tuple[list[BusMessage], asyncio.Event, Handler]:
    """A handler that keeps what it gets, and an event set once `count` messages arrived."""
    got: list[BusMessage] = []
    enough = asyncio.Event()

    async def handle(message: BusMessage) -> None:
        got.append(message)
        if len(got) >= count:
            enough.set()

    return got, enough, handle


async def test_a_subscriber_of_the_in_process_bus_gets_each_change(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        bus = app.state.bus
        assert isinstance(bus, MemoryBus)
        got, two, handle = collector(2)
        assert not bus.has_any_subscriber()  # by default: changes are not even serialised
        await bus.subscribe("cityhub.changes.*.update", "watch-updates", handle)
        assert bus.has_any_subscriber()
        assert bus.has_subscriber("cityhub.changes._.update")
        assert not bus.has_subscriber("cityhub.changes._.create")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            created = await http.post(f"{NGSI}/entities", json={
                "id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle",
                "speed": {"type": "Property", "value": 1}})
            assert created.status_code == 201
            for speed in (2, 3):
                patched = await http.patch(f"{NGSI}/entities/urn:ngsi-ld:Vehicle:1/attrs/speed",
                                           json={"value": speed})
                assert patched.status_code == 204
        await asyncio.wait_for(two.wait(), 10)
    bodies = [orjson.loads(m.data) for m in got]
    assert [b["operation"] for b in bodies] == ["update", "update"]
    assert [b["attrs"] for b in bodies] == [[VOCAB + "speed"]] * 2
    assert [b["entity"]["attrs"][VOCAB + "speed"][0]["value"] for b in bodies] == [2, 3]
    assert [b["previous"]["attrs"][VOCAB + "speed"][0]["value"] for b in bodies] == [1, 2]


async def test_a_broadcast_listener_of_the_in_process_bus_gets_each_change(
        settings: Settings) -> None:
    """A listener alone (no durable subscriber) still makes the publisher build the change."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        bus = app.state.bus
        assert isinstance(bus, MemoryBus)
        got, arrived, handle = collector(1)
        await bus.listen("cityhub.changes.>", handle)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            created = await http.post(f"{NGSI}/entities", json={
                "id": "urn:ngsi-ld:Vehicle:2", "type": "Vehicle",
                "speed": {"type": "Property", "value": 7}})
            assert created.status_code == 201
        await asyncio.wait_for(arrived.wait(), 10)
    body = orjson.loads(got[0].data)
    assert body["operation"] == "create"
    assert body["entity"]["attrs"][VOCAB + "speed"][0]["value"] == 7
