"""WAL checkpoints off the writers' path (SQLite): committed pages still reach the database
file while the store stays open, a checkpoint that cannot finish is tried again, and closing
leaves nothing behind."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cityhub.store.checkpoint import Checkpointer
from cityhub.store.database import SqliteDatabase

BLOB = b"x" * 3000  # about one page a row


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def fill(db: SqliteDatabase, rows: int) -> None:
    with db.transaction(write=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS blobs (n INTEGER PRIMARY KEY, b BLOB)")
    for _ in range(0, rows, 50):
        with db.transaction(write=True) as conn:
            conn.executemany("INSERT INTO blobs (b) VALUES (?)", [(BLOB,)] * 50)


def test_committed_pages_reach_the_database_file_while_the_store_is_open(
    tmp_path: Path
) -> None:
    path = tmp_path / "hub.db"
    db = SqliteDatabase(str(path))
    try:
        fill(db, 1000)  # about 3 MB, all of it in the WAL at first
        # Only a checkpoint writes pages into the database file in WAL mode.
        wait_until(lambda: path.stat().st_size > 1000 * len(BLOB))
        with db.transaction(write=False) as conn:
            assert conn.execute("SELECT count(*) FROM blobs").fetchone()[0] == 1000
    finally:
        db.close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    reopened = SqliteDatabase(str(path))
    try:
        with reopened.transaction(write=False) as conn:
            assert conn.execute("SELECT count(*) FROM blobs").fetchone()[0] == 1000
    finally:
        reopened.close()


def test_a_wal_past_its_bound_is_restarted_in_the_writers_turn(tmp_path: Path) -> None:
    """A reader on an old snapshot keeps the passive checkpoint from copying everything; once
    it is gone, the next pass restarts the WAL from its start (so the file stops growing)."""
    path = tmp_path / "hub.db"
    db = SqliteDatabase(str(path))
    turns: list[str] = []

    @contextlib.contextmanager
    def turn() -> Iterator[None]:
        turns.append("taken")
        yield

    checkpoints = Checkpointer(lambda: sqlite3.connect(path, isolation_level=None, timeout=1.0),
                               turn, restart_pages=100)
    try:
        fill(db, 50)
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM blobs").fetchone()  # holds this snapshot
        fill(db, 300)
        with contextlib.closing(sqlite3.connect(path, isolation_level=None, timeout=1.0)) as conn:
            checkpoints._checkpoint(conn)  # the reader blocks the restart: tried, not done
            assert turns == ["taken"]
            reader.execute("COMMIT")
            reader.close()
            checkpoints._checkpoint(conn)
            assert turns == ["taken", "taken"]
            with db.transaction(write=True) as write:
                write.execute("INSERT INTO blobs (b) VALUES (?)", (BLOB,))
            busy, pages, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, pages < 10) == (0, True), "the write went to the start of the WAL"
    finally:
        checkpoints.close()
        db.close()
