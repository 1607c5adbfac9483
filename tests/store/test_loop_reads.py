"""A retrieval reads the store from the API's event loop (`Store.get_async`): on SQLite inline,
on PostgreSQL over the async pool that `Database.loop_reads` opens on that loop. Either way
it answers exactly as `get`; inside `loop_reads` it takes no worker thread, and a read from
any other loop (or after the pool has closed) still answers, through a worker thread. On
PostgreSQL a read that meets a connection lost to a restart reads again on another."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg

from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.conftest import PG_BASE
from tests.store.helpers import vehicle

TENANT = "city"


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting what is handed to its threads."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


async def test_a_point_read_on_the_loop_answers_as_get_without_a_worker_thread(
        store: SqlStore, service: EntityService) -> None:
    service.create(TENANT, vehicle(1))
    service.create("", vehicle(2))
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    async with store.db.loop_reads():
        stored = await store.get_async(TENANT, "urn:ngsi-ld:Vehicle:1")
        assert stored is not None
        assert stored == store.get(TENANT, "urn:ngsi-ld:Vehicle:1")
        assert await store.get_async(TENANT, "urn:ngsi-ld:Vehicle:2") is None  # other tenant
        assert await store.get_async("", "urn:ngsi-ld:Vehicle:2") == store.get(
            "", "urn:ngsi-ld:Vehicle:2")
        assert await store.get_async(TENANT, "urn:ngsi-ld:Vehicle:9") is None
        concurrent = await asyncio.gather(*(
            store.get_async(TENANT, "urn:ngsi-ld:Vehicle:1") for _ in range(20)))
        assert concurrent == [stored] * 20
    assert executor.submitted == 0


async def test_a_point_read_off_the_pools_loop_still_answers(
        store: SqlStore, service: EntityService) -> None:
    service.create(TENANT, vehicle(1))
    expected = store.get(TENANT, "urn:ngsi-ld:Vehicle:1")
    async with store.db.loop_reads():
        # Another thread's own event loop may not use this loop's connections.
        elsewhere = await asyncio.to_thread(
            asyncio.run, store.get_async(TENANT, "urn:ngsi-ld:Vehicle:1"))
        assert elsewhere == expected
    # Once the pool has closed, reads go on (PostgreSQL: in a worker thread).
    assert await store.get_async(TENANT, "urn:ngsi-ld:Vehicle:1") == expected


async def test_a_point_read_survives_a_lost_connection(pg_url: str) -> None:
    """A PostgreSQL restart or a killed backend leaves dead connections in the pools: the
    next retrieval on each reads again on a new connection instead of failing."""
    name = "cityhub-lost-connection"
    store = SqlStore.open(f"{pg_url}&application_name={name}")
    try:
        EntityService(store).create(TENANT, vehicle(1))
        async with store.db.loop_reads():
            expected = store.get(TENANT, "urn:ngsi-ld:Vehicle:1")
            assert await store.get_async(TENANT, "urn:ngsi-ld:Vehicle:1") == expected
            with psycopg.connect(PG_BASE, autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = %s", (name,)).fetchone()
            assert killed is not None
            assert killed[0] >= 2  # both pools' connections
            assert await store.get_async(TENANT, "urn:ngsi-ld:Vehicle:1") == expected
            assert store.get(TENANT, "urn:ngsi-ld:Vehicle:1") == expected
    finally:
        store.close()
