"""A write that waits for the SQLite file's write turn (held by another hub process) waits in
the thread pool, not on the event loop: the process goes on answering other requests. Before,
the temporal and subscription writes ran on the event loop and stalled the whole process for
as long as the turn was held (up to the 30-s busy timeout)."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

BASE = "/ngsi-ld/v1"
V1 = "urn:ngsi-ld:Vehicle:1"
SUB = "urn:ngsi-ld:Subscription:waiting"
READING = {"type": "Property", "value": 70, "observedAt": "2026-01-01T11:00:00Z"}

Write = Callable[[httpx.AsyncClient, dict[str, Any]], Coroutine[Any, Any, httpx.Response]]
WRITES: dict[str, Write] = {
    "create temporal entity": lambda c, _: c.post(
        f"{BASE}/temporal/entities", json={"id": V1, "type": "Vehicle", "speed": [READING]}),
    "append temporal instances": lambda c, _: c.post(
        f"{BASE}/temporal/entities/{V1}/attrs", json={"speed": [READING]}),
    "modify temporal instance": lambda c, known: c.patch(
        f"{BASE}/temporal/entities/{V1}/attrs/speed/{known['instance']}", json=READING),
    "create subscription": lambda c, _: c.post(f"{BASE}/subscriptions", json={
        "id": "urn:ngsi-ld:Subscription:new", "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}}),
    "update subscription": lambda c, _: c.patch(
        f"{BASE}/subscriptions/{SUB}", json={"description": "changed"}),
}


@contextmanager
def write_turn_held(database: Path) -> Iterator[None]:
    """The writers' lock of `database`, as another hub process mid-write holds it."""
    turn = os.open(f"{database}-writer.lock", os.O_RDWR)
    fcntl.flock(turn, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(turn, fcntl.LOCK_UN)
        os.close(turn)


async def prepared(client: httpx.AsyncClient) -> dict[str, Any]:
    created = await client.post(f"{BASE}/entities", json={
        "id": V1, "type": "Vehicle", "speed": {**READING, "value": 10,
                                               "observedAt": "2026-01-01T10:00:00Z"}})
    assert created.status_code == 201, created.text
    subscribed = await client.post(f"{BASE}/subscriptions", json={
        "id": SUB, "type": "Subscription", "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}})
    assert subscribed.status_code == 201, subscribed.text
    history = await client.get(f"{BASE}/temporal/entities/{V1}", params={"lastN": "1"})
    return {"instance": history.json()["speed"][0]["instanceId"]}


@pytest.mark.parametrize("write", list(WRITES))
async def test_a_write_waiting_for_the_write_turn_holds_up_no_other_request(
        client: httpx.AsyncClient, tmp_path: Path, write: str) -> None:
    known = await prepared(client)
    with write_turn_held(tmp_path / "hub.db"):
        waiting = asyncio.ensure_future(WRITES[write](client, known))
        await asyncio.sleep(0.2)  # the write has started and waits for the turn
        other = await asyncio.wait_for(client.get(f"{BASE}/entities/{V1}"), timeout=10)
        assert other.status_code == 200
        assert not waiting.done()
    answer = await waiting
    assert answer.status_code in (201, 204), answer.text
