"""The store's change listener on the live feed: one write's changes reach every subscriber as
notices in order, with short names, handed over as one batch; with nobody subscribed nothing is
built, and a page that subscribes later hears the writes from then on."""

from __future__ import annotations

import asyncio
from typing import Any

from cityhub.ngsild.model import DEFAULT_VOCAB, NGSI_LD
from cityhub.store.port import Change
from cityhub.web.live import LocalFeed, Notice, listener, short

ROAD = "https://smartdatamodels.org/dataModel.Transportation/RoadSegment"


def entity(n: int, type_iri: str = DEFAULT_VOCAB + "RoadSegment") -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:RoadSegment:{n}", "type": [type_iri], "attrs": {}}


def changes() -> list[Change]:
    at = "2026-01-01T10:00:00.000000Z"
    return [
        Change("t1", "urn:ngsi-ld:RoadSegment:1", "create",
               (DEFAULT_VOCAB + "congestionLevel", NGSI_LD + "location"), entity(1), None, at),
        Change("t1", "urn:ngsi-ld:RoadSegment:2", "update", (ROAD + "#speed",),
               entity(2, ROAD), entity(2, ROAD), at),
        Change("", "urn:ngsi-ld:RoadSegment:3", "delete", (DEFAULT_VOCAB + "name",), None,
               entity(3), at),
        Change("", "urn:ngsi-ld:RoadSegment:4", "update", (), {"id": "x", "type": []}, None, at),
    ]


EXPECTED = [
    Notice("t1", "urn:ngsi-ld:RoadSegment:1", "RoadSegment", "create",
           ("congestionLevel", "location")),
    Notice("t1", "urn:ngsi-ld:RoadSegment:2", ROAD, "update", (ROAD + "#speed",)),
    Notice("", "urn:ngsi-ld:RoadSegment:3", "RoadSegment", "delete", ("name",)),
    Notice("", "urn:ngsi-ld:RoadSegment:4", "", "update", ()),
]


async def drain(queue: asyncio.Queue[Notice | None], count: int) -> list[Notice | None]:
    return [await asyncio.wait_for(queue.get(), 2) for _ in range(count)]


async def test_every_subscriber_gets_each_change_of_a_write_in_order_with_short_names() -> None:
    feed = LocalFeed()
    first, second = feed.subscribe(), feed.subscribe()
    await asyncio.to_thread(listener(feed), None, changes())  # the store's writer thread
    for sub in (first, second):
        assert await drain(sub.queue, 4) == EXPECTED
        await asyncio.sleep(0.02)
        assert sub.queue.empty()


async def test_writes_before_anyone_subscribes_reach_no_one_and_later_ones_do() -> None:
    feed = LocalFeed()
    on_changes = listener(feed)
    assert not feed.listening()
    on_changes(None, changes())
    sub = feed.subscribe()
    assert feed.listening()
    on_changes(None, changes()[2:])
    assert await drain(sub.queue, 2) == EXPECTED[2:]
    await asyncio.sleep(0.02)
    assert sub.queue.empty()
    feed.unsubscribe(sub)
    assert not feed.listening()


async def test_a_batch_beyond_a_full_queue_becomes_a_reload_then_the_later_notices() -> None:
    feed = LocalFeed(queue_size=3)
    sub = feed.subscribe()
    feed.publish_all(EXPECTED + EXPECTED[:1])  # five notices into a queue of three
    await asyncio.sleep(0.05)
    assert await drain(sub.queue, 2) == [None, EXPECTED[0]]  # as five single publishes give
    assert sub.queue.empty()


def test_short_names_drop_the_core_context_prefixes_only() -> None:
    assert short(DEFAULT_VOCAB + "speed") == "speed"
    assert short(NGSI_LD + "location") == "location"
    assert short(ROAD) == ROAD
    assert short(DEFAULT_VOCAB + "speed") == "speed"  # again, cached
