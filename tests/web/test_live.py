"""The live change feed: store writes become notices, fanned out to every page's stream."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from cityhub.api.app import create_app
from cityhub.api.routers import ops
from cityhub.config import Settings
from cityhub.web import sample_district as sd
from cityhub.web import visibility
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


async def test_the_stream_sends_the_changed_rows_of_the_layers_the_reader_may_see(
        wired: tuple[Any, httpx.AsyncClient]) -> None:
    app, http = wired
    state = sd.build(size=2, sensors=4)
    assert (await http.post("/ngsi-ld/v1/entityOperations/upsert",
                            json=sd.entities(state))).status_code in (201, 204)
    snapshot = ops.snapshot_of(app)
    views = visibility.everything()
    del views["signals"]  # as for a reader who may not see the junctions
    request = _Client()
    stream = ops._batches(request, app.state.feed, "", snapshot, views)  # type: ignore[arg-type]
    assert (await anext(stream)).startswith(b"retry: 1000\nevent: hello")
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    road, signal = state.roads[0].id, sorted(state.signals)[0]
    level = {"congestionLevel": {"type": "Property", "value": "severe"}}
    phase = {"currentPhase": {"type": "Property", "value": 3}}
    for entity_id, patch in ((road, level), (signal, phase)):
        answer = await http.patch(f"/ngsi-ld/v1/entities/{entity_id}/attrs", json=patch)
        assert answer.status_code == 204
    app.state.feed.publish(Notice("other", road, "RoadSegment", "update", ()))
    event = await asyncio.wait_for(pending, 5)
    head, data = event.split(b"\ndata: ")
    assert head == b"event: rows"
    body = orjson.loads(data)
    assert set(body["layers"]) == {"roads"}  # not the junction
    assert body["layers"]["roads"]["set"]["id"] == [road]
    assert body["layers"]["roads"]["set"]["level"] == ["severe"]
    assert body["layers"]["roads"]["removed"] == []
    assert body["summary"]["counts"]["roads"] == len(state.roads)
    request.gone = True
    await stream.aclose()


async def test_the_stream_ends_when_the_readers_token_expires(
        wired: tuple[Any, httpx.AsyncClient]) -> None:
    app, _ = wired
    stream = ops._batches(_Client(), app.state.feed, "", ops.snapshot_of(app),  # type: ignore[arg-type]
                          visibility.everything(), until=time.time() + 0.2)
    assert (await anext(stream)).startswith(b"retry: 1000\nevent: hello")
    with pytest.raises(StopAsyncIteration):  # the page comes back and is decided again
        await asyncio.wait_for(anext(stream), 5)


async def test_the_stream_ends_once_the_readers_account_no_longer_stands(
        wired: tuple[Any, httpx.AsyncClient]) -> None:
    app, _ = wired
    standing = True

    async def stands() -> bool:
        return standing

    stream = ops._batches(_Client(), app.state.feed, "", ops.snapshot_of(app),  # type: ignore[arg-type]
                          visibility.everything(), stands=stands)
    assert (await anext(stream)).startswith(b"retry: 1000\nevent: hello")
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    assert not pending.done()
    standing = False
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 5)


async def test_the_stream_decides_the_views_again_and_reloads_when_they_changed(
        wired: tuple[Any, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = wired
    monkeypatch.setattr(ops, "REDECIDE_S", 0.0)
    granted = visibility.everything()
    revoked = dict(granted)
    del revoked["meters"]  # as when the grant to the energy meters is revoked
    decided = [granted, granted, revoked]

    async def decide() -> dict[str, visibility.LayerView]:
        return decided.pop(0) if decided else revoked

    stream = ops._batches(_Client(), app.state.feed, "", ops.snapshot_of(app),  # type: ignore[arg-type]
                          granted, decide=decide)
    assert (await anext(stream)).startswith(b"retry: 1000\nevent: hello")
    assert await asyncio.wait_for(anext(stream), 10) == b"event: reload\ndata: {}\n\n"
    assert decided == []
    await stream.aclose()
