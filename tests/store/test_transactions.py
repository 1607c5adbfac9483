"""Transactions of the store on every back-end: a write is all or nothing (entity, indexes,
history, tenant, discovery rows, and whatever change listeners add), listeners see exactly what
changed, and concurrent read-modify-write operations lose no update, also across two stores
sharing one database (two hub processes)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from cityhub.ngsild.errors import AlreadyExists, BadRequestData
from cityhub.ngsild.model import Entity
from cityhub.store.database import Connection
from cityhub.store.port import Change
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.store.helpers import Clock, attrs, entity, history, iri, rows_in, vehicle

V1, V2 = "urn:ngsi-ld:Vehicle:1", "urn:ngsi-ld:Vehicle:2"
SPEED = iri("speed")
TABLES = ("entities", "attr_index", "geo_index", "attr_history", "type_attrs")


def snapshot(store: SqlStore, tenant: str) -> dict[str, int]:
    return {table: rows_in(store, table, tenant) for table in TABLES}


class Boom(Exception):
    pass


# -- atomicity ---------------------------------------------------------------------------------


def test_a_mutation_that_raises_writes_nothing(service: EntityService, store: SqlStore) -> None:
    service.create("", vehicle(1))
    before, stored = snapshot(store, ""), store.get("", V1)

    def half_done(current: Mapping[str, Entity | None]) -> dict[str, Entity | None]:
        current[V1]["attrs"].clear()  # type: ignore[index]
        raise BadRequestData("refused after touching the entity")

    with pytest.raises(BadRequestData):
        store.modify("", [V1, V2], half_done, "2026-01-01T13:00:00.000000Z")
    assert (snapshot(store, ""), store.get("", V1)) == (before, stored)


def test_a_failing_listener_rolls_back_every_row(
    service: EntityService, store: SqlStore, clock: Clock
) -> None:
    service.create("", vehicle(1))
    before, stored = snapshot(store, ""), store.get("", V1)

    def refuse(_conn: Connection, _changes: list[Change]) -> None:
        raise Boom

    store.listeners.append(refuse)
    clock.tick()
    with pytest.raises(Boom):
        service.batch("", "upsert", [vehicle(1, 99.0), entity({"id": V2, "type": "Car",
                                                               "color": "red"})])
    with pytest.raises(Boom):
        service.delete("", V1)
    with pytest.raises(Boom):
        service.create("city", vehicle(2))
    assert (snapshot(store, ""), store.get("", V1)) == (before, stored)
    assert snapshot(store, "city") == dict.fromkeys(TABLES, 0)
    assert not store.tenant_exists("city")

    store.listeners.remove(refuse)
    service.create("", entity({"id": V2, "type": "Car", "color": "red"}))
    service.create("city", vehicle(2))
    assert store.tenant_exists("city")
    assert {t.type for t in store.types("")} == {iri("Vehicle"), iri("Car")}
    assert [a.attribute for a in store.attributes("city")] == sorted(
        iri(a) for a in ("brandName", "isParked", "location", "speed"))


def test_a_listener_writes_in_the_same_transaction(
    service: EntityService, store: SqlStore
) -> None:
    with store.db.transaction(write=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS outbox_test (entity_id TEXT NOT NULL)")
    seen_inside: list[str] = []

    def outbox(conn: Connection, changes: list[Change]) -> None:
        for change in changes:
            row = conn.execute("SELECT doc FROM entities WHERE id = ?", (change.entity_id,))
            seen_inside.append("present" if row.fetchone() else "absent")
            conn.execute("INSERT INTO outbox_test (entity_id) VALUES (?)", (change.entity_id,))

    def refuse_second(_conn: Connection, changes: list[Change]) -> None:
        if any(c.entity_id == V2 for c in changes):
            raise Boom

    store.listeners.extend([outbox, refuse_second])
    service.create("", vehicle(1))
    with pytest.raises(Boom):
        service.create("", vehicle(2))
    service.delete("", V1)
    with store.db.transaction(write=False) as conn:
        rows = conn.execute("SELECT entity_id FROM outbox_test").fetchall()
    assert [r[0] for r in rows] == [V1, V1]
    assert seen_inside == ["present", "present", "absent"]


# -- change listeners --------------------------------------------------------------------------


@pytest.fixture
def changes(store: SqlStore) -> list[Change]:
    seen: list[Change] = []
    store.listeners.append(lambda _conn, batch: seen.extend(batch))
    return seen


def test_listeners_receive_each_change(
    service: EntityService, changes: list[Change], clock: Clock
) -> None:
    service.create("t", vehicle(1))
    created = changes[-1]
    assert (created.tenant, created.entity_id, created.operation) == ("t", V1, "create")
    assert sorted(created.attrs) == sorted(
        iri(a) for a in ("speed", "brandName", "isParked", "location"))
    assert created.previous is None
    assert created.entity is not None
    assert created.at == clock.text

    clock.tick()
    service.append_attrs("t", V1, attrs({"speed": 70, "brandName": "Mercedes"}), overwrite=True)
    updated = changes[-1]
    assert (updated.operation, updated.attrs, updated.at) == ("update", (SPEED,), clock.text)
    assert updated.previous["attrs"][SPEED][0]["value"] == 50.0  # type: ignore[index]
    assert updated.entity["attrs"][SPEED][0]["value"] == 70  # type: ignore[index]

    service.merge("t", V1, entity({"id": V1, "type": "Car"}, require_type=False))
    assert (changes[-1].operation, changes[-1].attrs) == ("update", ())

    service.delete_attr("t", V1, SPEED, None, True)
    assert (changes[-1].operation, changes[-1].attrs) == ("update", (SPEED,))

    service.delete("t", V1)
    deleted = changes[-1]
    assert (deleted.operation, deleted.entity) == ("delete", None)
    assert sorted(deleted.attrs) == sorted(iri(a) for a in ("brandName", "isParked", "location"))
    assert len(changes) == 5


def test_no_change_for_an_identical_resend(
    service: EntityService, changes: list[Change], clock: Clock
) -> None:
    service.create("", vehicle(1))
    clock.tick()
    service.append_attrs("", V1, attrs({"speed": {"value": 50.0, "unitCode": "KMH"}}),
                         overwrite=True)
    service.batch("", "upsert", [vehicle(1)])
    assert [c.operation for c in changes] == ["create"]


def test_a_batch_reports_one_change_per_written_entity(
    service: EntityService, changes: list[Change]
) -> None:
    service.create("", vehicle(1))
    outcome = service.batch("", "create", [vehicle(1), vehicle(2), vehicle(3)])
    assert len(outcome.errors) == 1
    assert [(c.entity_id, c.operation) for c in changes[1:]] == [
        (V2, "create"), ("urn:ngsi-ld:Vehicle:3", "create")]


# -- concurrency -------------------------------------------------------------------------------

WRITERS, ROUNDS = 8, 3


def hammer(services: list[EntityService]) -> None:
    """WRITERS threads append ROUNDS attributes each to V1, all starting together."""
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        service = services[n % len(services)]
        start.wait(timeout=30)
        for r in range(ROUNDS):
            service.append_attrs("", V1, attrs({f"w{n}r{r}": n}), overwrite=True)

    with ThreadPoolExecutor(WRITERS) as pool:
        for future in [pool.submit(writer, n) for n in range(WRITERS)]:
            future.result()


def expect_every_append(store: SqlStore) -> None:
    written = {iri(f"w{n}r{r}") for n in range(WRITERS) for r in range(ROUNDS)}
    assert written <= set(store.get("", V1)["attrs"])  # type: ignore[index]
    assert {attr for attr, _, _, _ in history(store, "", V1)} >= written


def test_concurrent_appends_lose_no_update(service: EntityService, store: SqlStore) -> None:
    service.create("", vehicle(1))
    hammer([service])
    expect_every_append(store)


@pytest.fixture
def second_store(store_url: str) -> Iterator[SqlStore]:
    other = SqlStore.open(store_url)
    try:
        yield other
    finally:
        other.close()


def test_two_stores_on_one_database_lose_no_update(
    service: EntityService, second_store: SqlStore, store: SqlStore, clock: Clock
) -> None:
    service.create("", vehicle(1))
    hammer([service, EntityService(second_store, clock)])
    expect_every_append(store)


class SpyStore:
    """Delegates to a store and tells when a mutation starts to run."""

    def __init__(self, store: SqlStore) -> None:
        self.store, self.entered = store, threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def modify(self, tenant: str, ids: list[str], mutation: Any, now: str) -> list[Change]:
        def spied(current: Mapping[str, Entity | None]) -> Mapping[str, Entity | None]:
            self.entered.set()
            return mutation(current)  # type: ignore[no-any-return]

        return self.store.modify(tenant, ids, spied, now)


def test_racing_creates_of_one_id_on_two_stores(pg_url: str, clock: Clock) -> None:
    """Row locks cannot cover an entity that does not exist yet: the second of two racing
    creates (two hub processes) must wait and answer AlreadyExists, not a database error."""
    racer = f"racer_{uuid.uuid4().hex[:8]}"
    first, second = SqlStore.open(pg_url), SqlStore.open(f"{pg_url}&application_name={racer}")
    spy, inside, release = SpyStore(second), threading.Event(), threading.Event()

    def slow_create(current: Mapping[str, Entity | None]) -> dict[str, Entity | None]:
        assert current[V1] is None
        inside.set()
        release.wait(timeout=30)
        return {V1: {**vehicle(1), "createdAt": clock.text, "modifiedAt": clock.text}}

    def racer_blocked() -> bool:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = %s AND wait_event_type = 'Lock'", (racer,)
            ).fetchone()
        return bool(row and row[0])

    try:
        with ThreadPoolExecutor(2) as pool:
            held = pool.submit(first.modify, "", [V1], slow_create, clock.text)
            assert inside.wait(timeout=30)
            racing = pool.submit(EntityService(spy, clock).create, "",  # type: ignore[arg-type]
                                 vehicle(1, 99.0))
            deadline = time.monotonic() + 30
            while not (spy.entered.is_set() or racer_blocked()) and time.monotonic() < deadline:
                time.sleep(0.01)
            release.set()
            held.result()
            with pytest.raises(AlreadyExists):
                racing.result()
        assert first.get("", V1)["attrs"][SPEED][0]["value"] == 50.0  # type: ignore[index]
    finally:
        release.set()
        first.close()
        second.close()
