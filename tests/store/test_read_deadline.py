"""A read with a deadline stops once the deadline has passed (`OverBudget`), whether before its
first statement, inside a statement or while the store sorts candidates in memory; it changes
nothing, and the connection serves the next read as before. The API relies on this to try a
query on its event loop and hand it to the thread pool when it runs long (api/deps.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cityhub.ngsild import temporal as tl
from cityhub.store import database
from cityhub.store.database import OverBudget
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from cityhub.store.temporal import TemporalStore
from tests.store.helpers import Clock, query, vehicle

TENANT = "city"
SPEED = "https://uri.etsi.org/ngsi-ld/default-context/speed"


def counting(to: int) -> str:
    return ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "  # noqa: S608
            f"WHERE x < {to:d}) SELECT count(*) FROM c")


# Per back-end: a statement that runs for many seconds unless stopped, and one that runs for a
# tenth of a second or more, past the 50-ms budget below.
LONG = {"sqlite": counting(100_000_000), "postgres": "SELECT pg_sleep(30)"}
LONGER_THAN_THE_BUDGET = {"sqlite": counting(2_000_000), "postgres": "SELECT pg_sleep(0.1)"}


def test_a_statement_that_runs_past_the_deadline_stops(store: SqlStore) -> None:
    db = store.db
    with (pytest.raises(OverBudget) as stopped, db.transaction(write=False) as conn,
          db.budget(conn, time.perf_counter() + 0.05)):
        conn.execute(LONG[db.dialect]).fetchone()
    assert stopped.value.__cause__ is not None  # stopped inside the statement, not before it
    # The connection is as it was: no handler or timeout stops a read without a budget.
    with db.transaction(write=False) as conn:
        assert conn.execute(LONGER_THAN_THE_BUDGET[db.dialect]).fetchone() is not None


def test_a_query_whose_deadline_has_passed_reads_nothing_and_changes_nothing(
        service: EntityService, store: SqlStore) -> None:
    service.batch(TENANT, "upsert", [vehicle(i, float(i)) for i in range(20)])
    with pytest.raises(OverBudget):
        store.query(TENANT, query(q="speed>5"), deadline=time.perf_counter() - 1.0)
    assert len(store.query(TENANT, query(q="speed>5")).entities) == 14


@pytest.mark.parametrize("kind", ["indexed", "type tested in memory", "counted"])
def test_a_query_within_its_deadline_answers_as_one_without(
        service: EntityService, store: SqlStore, kind: str) -> None:
    service.batch(TENANT, "upsert", [vehicle(i, float(i)) for i in range(30)])
    wanted = {
        "indexed": query(q="speed>=10", limit=5, offset=2),
        "type tested in memory": query(type_="Vehicle", q="speed<12", limit=4),
        "counted": query(type_="Vehicle", q="speed>3", count=True, limit=3),
    }[kind]
    late = store.query(TENANT, wanted, deadline=time.perf_counter() + 3600.0)
    plain = store.query(TENANT, wanted)
    assert late == plain
    assert late.entities


def test_a_history_read_whose_deadline_has_passed_stops(
        service: EntityService, store: SqlStore) -> None:
    service.batch(TENANT, "upsert", [vehicle(1, 10.0)])
    temporal = TemporalStore(store)
    entity = store.get(TENANT, vehicle(1)["id"])
    assert entity is not None
    past = time.perf_counter() - 1.0
    for representation in ({}, {"aggr_methods": "max", "aggr_period": "PT1H",
                                "format_": "aggregatedValues"}):
        asked = tl.parse_temporal_query(**representation)
        with pytest.raises(OverBudget):
            temporal.read(TENANT, entity, asked, deadline=past)
        with pytest.raises(OverBudget):  # the attributes named: no look-up of them first
            temporal.read(TENANT, entity, asked, [SPEED], deadline=past)
        assert temporal.read(TENANT, entity, asked) == temporal.read(
            TENANT, entity, asked, deadline=time.perf_counter() + 3600.0)
    with pytest.raises(OverBudget):
        temporal.attributes(TENANT, entity["id"], deadline=past)
    assert SPEED in temporal.attributes(TENANT, entity["id"])


def test_the_deadline_is_looked_at_per_candidate_sorted_in_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A type tested in memory streams the candidates through Python: the deadline is looked
    at per candidate too, not only inside SQLite's statements (SQLite here, where the clock
    of both is this module's)."""
    store = SqlStore.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        EntityService(store, Clock()).batch(
            TENANT, "upsert", [vehicle(i, float(i)) for i in range(10)])
        looks = iter([0.0])  # the look before the first statement; every later one is late
        monkeypatch.setattr(database, "_clock", lambda: next(looks, 10.0))
        monkeypatch.setattr(database, "PROGRESS_OPS", 10**9)  # SQLite itself never looks
        with pytest.raises(OverBudget) as stopped:
            store.query(TENANT, query(type_="Vehicle", q="speed>=0;speed<1000", limit=5),
                        deadline=1.0)
        assert stopped.value.__cause__ is None  # not from inside a statement
    finally:
        store.close()
