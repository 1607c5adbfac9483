"""The live change feed: store writes become notices, fanned out to every page's stream."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from cityhub.api.app import create_app
from cityhub.api.routers import ops
from cityhub.config import Settings
from cityhub.web.live import LocalFeed, Notice


def notice(n: int, tenant: str = "") -> Notice:
    return Notice(tenant, f"urn:ngsi-ld:RoadSegment:t:{n}", "RoadSegment", "update",
                  ("congestionLevel",))


async def test_every_subscriber_gets_notices_published_from_other_threads() -> None:
    feed = LocalFeed()
    first, second = feed.subscribe(), feed.subscribe()
    writer = threading.Thread(target=lambda: [feed.publish(notice(n)) for n in range(3)])
    writer.start()
    writer.join()
    for sub in (first, second):
        got = [await asyncio.wait_for(sub.queue.get(), 2) for _ in range(3)]
        assert [n.id for n in got if n] == [notice(i).id for i in range(3)]
    feed.unsubscribe(first)
    feed.publish(notice(9))
    assert (await asyncio.wait_for(second.queue.get(), 2)) == notice(9)
    await asyncio.sleep(0.05)
    assert first.queue.empty()


async def test_a_lagging_reader_is_told_to_reload_instead_of_growing_without_bound() -> None:
    feed = LocalFeed(queue_size=3)
    sub = feed.subscribe()
    for n in range(5):
        feed.publish(notice(n))
    await asyncio.sleep(0.05)
    assert sub.queue.get_nowait() is None  # the reload marker replaces what was dropped
    assert sub.queue.get_nowait() == notice(4)  # later changes follow it


@pytest.fixture
async def wired(store_url: str, tmp_path: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The hub app on every store back-end, lifespan run."""
    app = create_app(Settings(data_dir=tmp_path / "data", store_url=store_url,
                              public_url="http://testserver", auth="disabled"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield app, http


async def test_hub_writes_reach_the_feed_with_short_names(
        wired: tuple[Any, httpx.AsyncClient]) -> None:
    app, http = wired
    sub = app.state.feed.subscribe()
    entity = {"id": "urn:ngsi-ld:RoadSegment:t:E1", "type": "RoadSegment",
              "congestionLevel": {"type": "Property", "value": "light"}}
    assert (await http.post("/ngsi-ld/v1/entities", json=entity)).status_code == 201
    answer = await http.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:RoadSegment:t:E1/attrs",
                              json={"congestionLevel": {"type": "Property", "value": "severe"}})
    assert answer.status_code == 204
    assert (await http.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:RoadSegment:t:E1")).status_code \
        == 204
    got = [await asyncio.wait_for(sub.queue.get(), 2) for _ in range(3)]
    assert [(n.type, n.operation) for n in got if n] == [
        ("RoadSegment", "create"), ("RoadSegment", "update"), ("RoadSegment", "delete")]
    assert got[1] is not None
    assert got[1].attrs == ("congestionLevel",)


class _Client:
    """What the stream reads from the request: whether the page went away."""

    def __init__(self) -> None:
        self.gone = False

    async def is_disconnected(self) -> bool:
        return self.gone


async def test_the_stream_batches_the_notices_of_its_tenant_into_one_event() -> None:
    feed, request = LocalFeed(), _Client()
    stream = ops._batches(request, feed, "")  # type: ignore[arg-type]
    assert (await anext(stream)).startswith(b"retry: 1000\nevent: hello")
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    for n in range(3):
        feed.publish(notice(n))
    feed.publish(notice(7, tenant="other"))
    event = await asyncio.wait_for(pending, 3)
    head, data = event.split(b"\ndata: ")
    assert head == b"event: changes"
    changes = orjson.loads(data)["changes"]
    assert [c["id"] for c in changes] == [notice(n).id for n in range(3)]
    assert changes[0] == {"id": notice(0).id, "type": "RoadSegment", "op": "update",
                          "attrs": ["congestionLevel"]}
    request.gone = True
    await stream.aclose()
