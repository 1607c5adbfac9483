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


def test_a_single_statement_read_sees_only_committed_rows(store_url: str) -> None:
    """`fetch_one` reads without a transaction of its own: it sees each write once committed,
    never while it is under way, and a closed database refuses it."""
    import threading

    from cityhub.store.database import StoreClosed

    database = open_database(store_url)
    with database.transaction(write=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS one_row_reads (x INTEGER)")
        conn.execute("DELETE FROM one_row_reads")
    inside, release = threading.Event(), threading.Event()

    def write() -> None:
        with database.transaction(write=True) as conn:
            conn.execute("INSERT INTO one_row_reads VALUES (7)")
            inside.set()
            release.wait(5)

    count = "SELECT count(*) FROM one_row_reads WHERE x = ?"
    writer = threading.Thread(target=write)
    writer.start()
    inside.wait(5)
    assert database.fetch_one(count, (7,))[0] == 0
    release.set()
    writer.join(10)
    assert database.fetch_one(count, (7,))[0] == 1
    assert database.fetch_one("SELECT x FROM one_row_reads WHERE x = ?", (8,)) is None
    database.close()
    if database.dialect == "sqlite":
        closed: type[Exception] = StoreClosed
    else:
        from psycopg_pool import PoolClosed as closed
    with pytest.raises(closed):
        database.fetch_one(count, (7,))


def test_processes_sharing_a_sqlite_file_take_turns_to_write(tmp_path: Path) -> None:
    """Each SqliteDatabase stands for one hub process (`serve --workers`): a write holds the
    file's writer lock, so another process waits for its turn (retrying within milliseconds,
    not in SQLite's busy handler), and every write of both lands."""
    import fcntl
    import os
    import threading

    from cityhub.store.database import SqliteDatabase

    path = str(tmp_path / "shared.db")
    first, second = SqliteDatabase(path), SqliteDatabase(path)
    with first.transaction(write=True) as conn:
        conn.execute("CREATE TABLE counter (n INTEGER)")
        conn.execute("INSERT INTO counter VALUES (0)")
        other = os.open(f"{path}-writer.lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once the write committed
    fcntl.flock(other, fcntl.LOCK_UN)
    os.close(other)

    def bump(database: SqliteDatabase) -> None:
        for _ in range(50):
            with database.transaction(write=True) as conn:
                conn.execute("UPDATE counter SET n = n + 1")

    threads = [threading.Thread(target=bump, args=(db,)) for db in (first, second) * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert second.fetch_one("SELECT n FROM counter")[0] == 300
    first.close()
    second.close()


def test_a_writer_held_up_too_long_by_another_process_gets_database_is_locked(
        tmp_path: Path) -> None:
    """A process that keeps the write turn (hung) cannot stall the others for ever: they give
    up after the busy timeout, as SQLite itself does."""
    import fcntl
    import os
    import sqlite3

    from cityhub.store.database import take_turn

    lock = str(tmp_path / "db-writer.lock")
    hung, waiting = (os.open(lock, os.O_RDWR | os.O_CREAT) for _ in range(2))
    fcntl.flock(hung, fcntl.LOCK_EX)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        take_turn(waiting, timeout_s=0.05)
    fcntl.flock(hung, fcntl.LOCK_UN)
    take_turn(waiting, timeout_s=0.05)  # free again: the turn is taken at once
    os.close(hung)
    os.close(waiting)



def race_to_open(path: str) -> list[BaseException]:
    """Three threads of one store and three stores of their own (as processes) write at once
    to the new file `path`; returns what they raised."""
    import threading

    from cityhub.store.database import SqliteDatabase

    shared = SqliteDatabase(path)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def write(database: SqliteDatabase | None) -> None:
        try:
            start.wait()
            own = database or SqliteDatabase(path)
            with own.transaction(write=True) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
                conn.execute("INSERT INTO t VALUES (1)")
            if own is not shared:
                own.close()
        except BaseException as error:  # reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=write, args=(db,)) for db in (shared, None) * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if not errors:
        assert shared.fetch_one("SELECT count(*) FROM t")[0] == 6
    shared.close()
    return errors


def test_threads_and_processes_opening_a_new_file_at_once_all_write(tmp_path: Path) -> None:
    """The first connection turns a new file to WAL and needs it to itself for that, without
    SQLite's busy handler: seen as 'database is locked' in about one run of ten when hubs (or
    a hub's threads) opened a new file together. Each round races both on a fresh file."""
    for round_ in range(30):
        assert race_to_open(str(tmp_path / f"new{round_}.db")) == []


def test_a_new_file_is_turned_to_wal_during_the_writers_turn(tmp_path: Path) -> None:
    """Opening a store waits for the writers' turn (another process may be converting the
    same new file) and leaves the file in WAL mode before any transaction."""
    import fcntl
    import os
    import sqlite3
    import threading

    from cityhub.store.database import SqliteDatabase

    path = str(tmp_path / "new.db")
    holder = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    opened: list[SqliteDatabase] = []
    thread = threading.Thread(target=lambda: opened.append(SqliteDatabase(path)))
    thread.start()
    thread.join(0.3)
    assert opened == []  # waiting for the turn
    fcntl.flock(holder, fcntl.LOCK_UN)
    thread.join(30)
    assert len(opened) == 1
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()
    opened[0].close()
    os.close(holder)
