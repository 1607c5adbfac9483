"""The two SQL back-ends behind `Database`: store URLs, all-or-nothing write transactions, and
readers that never see a write before it commits."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cityhub.store.database import open_database
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.store.helpers import Clock, iri, query, vehicle

V1 = "urn:ngsi-ld:Vehicle:1"
SPEED = iri("speed")


def test_sqlite_urls_relative_absolute_and_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for url, file in [
        ("sqlite:///data/rel.db", tmp_path / "data" / "rel.db"),
        (f"sqlite:///{tmp_path / 'abs' / 'hub.db'}", tmp_path / "abs" / "hub.db"),
    ]:
        store = SqlStore.open(url)
        EntityService(store, Clock()).create("", vehicle())
        store.close()
        assert file.is_file(), url
        reopened = SqlStore.open(url)
        assert reopened.get("", V1) is not None, "the store is durable across reopening"
        reopened.close()
    memory = SqlStore.open("sqlite://:memory:")
    EntityService(memory, Clock()).create("", vehicle())
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(memory.get, "", V1).result() is not None, "one database, all threads"
    memory.close()


@pytest.mark.parametrize("url", ["mysql://localhost/hub", "hub.db", "redis://x"])
def test_an_unknown_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported store URL"):
        open_database(url)


def test_a_write_transaction_is_all_or_nothing(store_url: str) -> None:
    db = open_database(store_url)
    try:
        with db.transaction(write=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t_items (n INTEGER NOT NULL)")

        def abort_after_inserting() -> None:
            with db.transaction(write=True) as conn:
                conn.executemany("INSERT INTO t_items (n) VALUES (?)", [(1,), (2,)])
                raise RuntimeError("abort")

        with pytest.raises(RuntimeError):
            abort_after_inserting()
        with db.transaction(write=True) as conn:
            conn.executemany("INSERT INTO t_items (n) VALUES (?)", [(3,), (4,)])
        with db.transaction(write=False) as conn:
            rows = conn.execute("SELECT n FROM t_items ORDER BY n").fetchall()
        assert [r[0] for r in rows] == [3, 4]
    finally:
        db.close()


def test_readers_do_not_see_a_write_before_it_commits(
    service: EntityService, store: SqlStore
) -> None:
    service.create("", vehicle(1, 50.0))
    fast = query(q="speed>60")
    seen: list[tuple[object, int]] = []

    def read(_conn: object, _changes: object) -> None:
        """Runs inside the write transaction; reads on another thread (another connection)."""
        def look() -> tuple[object, int]:
            found = store.get("", V1)
            assert found is not None
            return found["attrs"][SPEED][0]["value"], len(store.query("", fast).entities)

        with ThreadPoolExecutor(1) as reader:
            seen.append(reader.submit(look).result(timeout=30))

    store.listeners.append(read)
    service.replace("", vehicle(1, 90.0))
    assert seen == [(50.0, 0)]
    assert [e["id"] for e in store.query("", fast).entities] == [V1]


def test_close_waits_for_a_transaction_under_way(tmp_path: Path) -> None:
    """Closing while another thread is mid-transaction must wait, not pull the connection away."""
    import threading

    from cityhub.store.database import SqliteDatabase, StoreClosed

    database = SqliteDatabase(str(tmp_path / "close.db"))
    entered, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def busy() -> None:
        with database.transaction(write=True) as conn:
            conn.execute("CREATE TABLE t (x INTEGER)")
            entered.set()
            release.wait(5)
            conn.execute("INSERT INTO t VALUES (1)")
            outcome.append(conn.execute("SELECT count(*) FROM t").fetchone()[0])

    worker = threading.Thread(target=busy)
    worker.start()
    entered.wait(5)
    closer = threading.Thread(target=database.close)
    closer.start()
    release.set()
    worker.join(10)
    closer.join(10)
    assert outcome == [1]
    with pytest.raises(StoreClosed), database.transaction(write=False):
        pass
