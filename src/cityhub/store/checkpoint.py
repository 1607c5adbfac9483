"""WAL checkpoints of a SQLite file on a thread of their own, off the writers' path.

SQLite's default copies the WAL back into the database file inside a COMMIT, once the WAL
holds 1,000 pages: with `synchronous=NORMAL` that commit then waits for two fsyncs and the
page copies. Single updates dirty a handful of pages each, so every few dozen group commits
one took 5-70 ms instead of 0.5 ms (measured in-process: 3.7 ms per commit on average with
them, 0.65 ms without), and while it did, every request that waited for that commit waited
too. Here the writers' connections turn automatic checkpoints off and this thread runs a
PASSIVE checkpoint, which neither blocks nor waits for readers and writers, at most every
`interval_s` after a write. Durability is unchanged: a committed transaction is in the WAL,
which readers and crash recovery use until it has been copied.

A PASSIVE checkpoint copies what it can; the WAL restarts from its start when a writer finds
it all copied. If writes never pause long enough for that, the WAL would grow: past
`restart_pages` the checkpoint takes the writers' turn (the caller's `exclusive`) and runs
a RESTART checkpoint, which waits for readers of old frames (SQLite's busy timeout).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
RETRY_S = 5.0  # pause after a failed pass


class Checkpointer:
    """The checkpoint thread of one SQLite file (see module docstring)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 exclusive: Callable[[], contextlib.AbstractContextManager[None]], *,
                 interval_s: float = 0.25, restart_pages: int = 4_000) -> None:
        self._connect = connect
        self._exclusive = exclusive
        self._interval_s = interval_s
        self._restart_pages = restart_pages
        self._written = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def wrote(self) -> None:
        """A write transaction committed (called by the writer; cheap when already noted)."""
        if not self._written.is_set():
            if self._thread is None:
                self._start()
            self._written.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="cityhub-checkpoint",
                                                daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop the thread (the last connection's close checkpoints what is left)."""
        with self._start_lock:
            self._stop.set()
            self._written.set()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        # Nothing else copies the WAL back (the writers turned that off), so this thread
        # outlives any error: a failed pass, or a failed connection, is tried again later.
        # `close` may come between the stop check and `clear`, which then clears its wake-up:
        # so the loop asks for the stop again before it waits.
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.is_set():
                self._written.wait()
                if self._stop.wait(self._interval_s):  # let writes gather between passes
                    return
                self._written.clear()
                try:
                    conn = conn or self._connect()
                    self._checkpoint(conn)
                except Exception:  # logged; the writers are not affected
                    log.warning("event=wal_checkpoint_failed", exc_info=True)
                    if conn is not None:  # a new connection for the next try
                        conn.close()
                        conn = None
                    self._written.set()  # the WAL still holds what this pass did not copy
                    self._stop.wait(RETRY_S)
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        _busy, pages, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if pages > self._restart_pages:
            with self._exclusive():
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
