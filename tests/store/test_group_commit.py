"""Group commit (SQLite): single writes from concurrent callers share a transaction, every one
of them lands, a failing write leaves its batch neighbours alone, and the writes to one entity
keep the order in which they were made. Concurrent threads and coroutines lose no write on
every back-end (PostgreSQL gives each write its own transaction)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from cityhub.ngsild.errors import BadRequestData, ResourceNotFound
from cityhub.ngsild.model import Entity, Instance
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.store.helpers import attrs, history, iri, vehicle

SPEED = iri("speed")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = SqlStore.open(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def sqlite_service(sqlite_store: SqlStore) -> EntityService:
    return EntityService(sqlite_store)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


@contextmanager
def writer_held(store: SqlStore) -> Iterator[Callable[[Callable[[], object]], Future[object]]]:
    """Hold the writer inside a first write, so that the writes submitted meanwhile queue up
    and then go out together. Yields `submit(call)`, which returns once the call's write is
    queued, so that the submission order is the queue order."""
    release, inside = threading.Event(), threading.Event()
    writer = store._writer
    assert writer is not None

    def blocking(current: Mapping[str, Entity | None]) -> dict[str, Entity | None]:
        inside.set()
        release.wait(timeout=30)
        return {}

    with ThreadPoolExecutor(64) as pool:
        first = pool.submit(store.modify, "", ["urn:ngsi-ld:Blocker:1"], blocking,
                            "2026-01-01T12:00:00.000000Z")
        assert inside.wait(timeout=30)
        queued = 0

        def submit(call: Callable[[], object]) -> Future[object]:
            nonlocal queued
            future = pool.submit(call)
            queued += 1
            wait_until(lambda: writer.pending() >= queued)
            return future

        try:
            yield submit
        finally:
            release.set()
            first.result(timeout=30)


def speed_update(service: EntityService, n: int, speed: float) -> Callable[[], object]:
    return lambda: service.update_attrs("", f"urn:ngsi-ld:Vehicle:{n}",
                                        attrs({"speed": {"type": "Property", "value": speed}}))


def test_concurrent_writers_all_land_in_few_commits(
    sqlite_service: EntityService, sqlite_store: SqlStore
) -> None:
    for n in range(20):
        sqlite_service.create("", vehicle(n))
    commits = sqlite_store._writer.commits
    with writer_held(sqlite_store) as submit:
        futures = [submit(speed_update(sqlite_service, n, 100.0 + n)) for n in range(20)]
    for future in futures:
        future.result(timeout=30)
    assert [sqlite_store.get("", f"urn:ngsi-ld:Vehicle:{n}")["attrs"][SPEED][0]["value"]  # type: ignore[index]
            for n in range(20)] == [100.0 + n for n in range(20)]
    # The blocker's transaction, then the 20 queued updates together.
    assert sqlite_store._writer.commits - commits == 2


def test_many_threads_writing_at_once_lose_nothing(
    service: EntityService, store: SqlStore
) -> None:
    for n in range(8):
        service.create("", vehicle(n))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: speed_update(service, k % 8, float(k))(), range(200)))
    for n in range(8):
        speeds = [inst["value"] for attr, _, _, inst
                  in history(store, "", f"urn:ngsi-ld:Vehicle:{n}") if attr == SPEED]
        assert sorted(speeds[1:]) == [float(k) for k in range(200) if k % 8 == n]


def test_a_failing_write_leaves_its_batch_neighbours_alone(
    sqlite_service: EntityService, sqlite_store: SqlStore
) -> None:
    sqlite_service.create("", vehicle(1))
    sqlite_service.create("", vehicle(2))

    def refuse(current: Mapping[str, Entity | None]) -> dict[str, Entity | None]:
        entity = current["urn:ngsi-ld:Vehicle:1"]
        assert entity is not None
        entity["attrs"][SPEED][0]["value"] = -1.0  # written into the savepoint, then refused
        raise BadRequestData("refused")

    def fail() -> object:
        return sqlite_store.modify("", ["urn:ngsi-ld:Vehicle:1"], refuse,
                                   "2026-01-01T13:00:00.000000Z")

    def duplicate() -> object:  # fails in SQL, not in Python: a unique key
        return sqlite_service.create("", vehicle(2))

    with writer_held(sqlite_store) as submit:
        before = submit(speed_update(sqlite_service, 1, 61.0))
        failing = submit(fail)
        clashing = submit(duplicate)
        after = submit(speed_update(sqlite_service, 2, 62.0))
    before.result(timeout=30)
    after.result(timeout=30)
    with pytest.raises(BadRequestData):
        failing.result(timeout=30)
    with pytest.raises(Exception, match="already exists"):
        clashing.result(timeout=30)
    assert sqlite_store.get("", "urn:ngsi-ld:Vehicle:1")["attrs"][SPEED][0]["value"] == 61.0  # type: ignore[index]
    assert sqlite_store.get("", "urn:ngsi-ld:Vehicle:2")["attrs"][SPEED][0]["value"] == 62.0  # type: ignore[index]


def test_writes_to_one_entity_keep_their_order(
    sqlite_service: EntityService, sqlite_store: SqlStore
) -> None:
    sqlite_service.create("", vehicle(1))
    with writer_held(sqlite_store) as submit:
        futures = [submit(speed_update(sqlite_service, 1, float(k))) for k in range(30)]
    for future in futures:
        future.result(timeout=30)
    speeds = [inst["value"] for attr, _, _, inst
              in history(sqlite_store, "", "urn:ngsi-ld:Vehicle:1") if attr == SPEED]
    assert speeds == [50.0, *(float(k) for k in range(30))]
    assert sqlite_store.get("", "urn:ngsi-ld:Vehicle:1")["attrs"][SPEED][0]["value"] == 29.0  # type: ignore[index]


def test_a_closed_store_refuses_new_writes(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'hub.db'}"
    store = SqlStore.open(store_url)
    service = EntityService(store)
    service.create("", vehicle(1))
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        service.create("", vehicle(2))
    reopened = SqlStore.open(store_url)
    try:
        assert reopened.get("", "urn:ngsi-ld:Vehicle:1") is not None
    finally:
        reopened.close()


def test_coroutines_are_answered_after_their_commit_and_fail_alone(
    service: EntityService, store: SqlStore
) -> None:
    for n in range(10):
        service.create("", vehicle(n))

    def fragment(speed: float) -> list[Instance]:
        return attrs({"speed": {"type": "Property", "value": speed}})[SPEED]

    async def main() -> list[object]:
        writes = [service.partial_update_attr_async("", f"urn:ngsi-ld:Vehicle:{n}", SPEED,
                                                    fragment(200.0 + n)) for n in range(10)]
        missing = service.partial_update_attr_async("", "urn:ngsi-ld:Vehicle:404", SPEED,
                                                    fragment(1.0))
        return await asyncio.gather(*writes[:5], missing, *writes[5:], return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results.pop(5), ResourceNotFound)
    assert results == [None] * 10
    assert [store.get("", f"urn:ngsi-ld:Vehicle:{n}")["attrs"][SPEED][0]["value"]  # type: ignore[index]
            for n in range(10)] == [200.0 + n for n in range(10)]
