"""WAL checkpoints off the writers' path (SQLite): committed pages still reach the database
file while the store stays open, a checkpoint that cannot finish is tried again, and closing
leaves nothing behind."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
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


class _CloseWhileClearing(threading.Event):
    """The checkpoint thread's wake-up, on which `clear` lets `close` run first: the moment
    between the thread's stop check and its clearing of the wake-up."""

    def __init__(self, closing: Callable[[], None]) -> None:
        super().__init__()
        self.closing = closing
        self.closer: threading.Thread | None = None

    def clear(self) -> None:
        if self.closer is None:
            self.closer = threading.Thread(target=self.closing, daemon=True)
            self.closer.start()
            wait_until(self.is_set)  # close has asked the thread to stop, and is joining it
        super().clear()


def test_closing_while_a_pass_begins_stops_the_thread(tmp_path: Path) -> None:
    """A store closed just as a checkpoint pass begins must not hang in `close` (a test run
    once waited there for ever: the pass cleared close's wake-up, then waited for another)."""
    path = tmp_path / "hub.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    checkpoints = Checkpointer(lambda: sqlite3.connect(path, isolation_level=None),
                               contextlib.nullcontext, interval_s=0.0)
    wake_up = _CloseWhileClearing(checkpoints.close)
    checkpoints._written = wake_up
    checkpoints.wrote()
    wait_until(lambda: wake_up.closer is not None)
    assert wake_up.closer is not None
    wake_up.closer.join(timeout=10)
    assert not wake_up.closer.is_alive(), "close() still waits for the checkpoint thread"
