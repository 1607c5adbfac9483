"""Connections to the two SQL back-ends behind one tiny interface, so the store's SQL is shared.

SQL is written once with `?` placeholders; the PostgreSQL side rewrites them to `%s`.
SQLite runs in WAL mode with one connection per thread and one writer at a time; PostgreSQL
uses a connection pool, and each write transaction takes row locks, so several hub processes
can share one database. Point reads from the hub's event loop (`fetch_one_async`) are answered
inline on SQLite and over a second, async pool on PostgreSQL (`loop_reads`).

Several hub processes on one SQLite file (`cityhub serve --workers N`) take turns to write
through an exclusive `flock` on a sidecar file (`<file>-writer.lock`) before BEGIN IMMEDIATE:
a waiting writer retries every 0.1 to 2 ms. Without it, the writer that found the file locked
would poll in SQLite's busy handler, which sleeps 1 to 100 ms between tries (measured: p99 of a
PATCH 218 ms with two processes). Like SQLite's busy timeout, the wait ends after 30 s with
"database is locked", so one hung process cannot stall the others' writes for ever.

SQLite's automatic WAL checkpoints are off: a thread of each file's own copies the WAL back
(checkpoint.py), so that no COMMIT waits for a checkpoint's fsyncs.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

from cityhub.store.checkpoint import Checkpointer

Dialect = Literal["sqlite", "postgres"]
BUSY_TIMEOUT_S = 30.0


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Database(Protocol):
    dialect: Dialect

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]: ...

    def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row of one read statement (None if it has none): a statement alone
        reads one consistent snapshot, so no transaction is opened around it."""
        ...

    async def fetch_one_async(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """`fetch_one` for a coroutine on the event loop, which it never blocks for longer
        than a page-cache read: SQLite answers inline; PostgreSQL awaits a connection of
        the pool `loop_reads` opened on this loop, or else runs in a worker thread."""
        ...

    def loop_reads(self) -> AbstractAsyncContextManager[None]:
        """While inside (on the event loop that serves requests), `fetch_one_async` reads
        from that loop without a worker thread."""
        ...

    def budget(self, conn: Connection, deadline: float) -> AbstractContextManager[None]:
        """Inside, the statements `conn` runs (in a read transaction) stop once
        `time.perf_counter()` passes `deadline`, with `OverBudget`; a deadline already past
        stops the read before its first statement."""
        ...

    def close(self) -> None: ...


class StoreClosed(RuntimeError):
    """A transaction was asked of a database that has been closed."""


class OverBudget(Exception):
    """A read stopped at its deadline (`Database.budget`). It changed nothing: run it again
    where a long read harms nobody (the API's thread pool rather than its event loop)."""


PROGRESS_OPS = 1000
"""SQLite virtual-machine instructions between two looks at the clock of a read with a
deadline (a few microseconds of work; a look costs about one)."""

_clock = time.perf_counter


def within(db: Database, conn: Connection, deadline: float | None,
           ) -> AbstractContextManager[None]:
    """`db.budget(conn, deadline)`, or nothing for a read without a deadline."""
    return nullcontext() if deadline is None else db.budget(conn, deadline)


def check_deadline(deadline: float | None) -> None:
    """Raise `OverBudget` if `deadline` (a `time.perf_counter()` value) has passed."""
    if deadline is not None and _clock() > deadline:
        raise OverBudget("the read ran past its deadline")


def take_turn(fd: int, timeout_s: float = BUSY_TIMEOUT_S) -> None:
    """Take the writers' exclusive lock on `fd`, or raise as SQLite does when busy too long."""
    deadline, pause = time.monotonic() + timeout_s, 0.0001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError(
                    f"database is locked: another process held the write turn for {timeout_s:g} s"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.002)


class SqliteDatabase:
    """SQLite file (or :memory: for tests) in WAL mode; see module docstring."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: str, *, functions: dict[str, Any] | None = None) -> None:
        self._path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._functions = functions or {}
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._shared: sqlite3.Connection | None = None
        # Transactions under way, so that close() waits for them: closing a connection that
        # another thread is using crashes the interpreter (seen with a notifier mid-claim).
        self._active = 0
        self._closed = False
        self._idle = threading.Condition()
        self._turns: int | None = None  # the writers' lock file of the processes sharing path
        self._checkpoints: Checkpointer | None = None
        if path == ":memory:":  # one connection, or each thread would see its own database
            self._shared = self._open()
        else:
            self._checkpoints = Checkpointer(self._checkpoint_connection, self._write_turn)
            self._turns = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
            # The first connection turns a new file to WAL, which needs the file to itself and
            # fails at once, without the busy handler, if another connection (a thread's or
            # another process's) is opening it too: so it is opened during the writers' turn.
            take_turn(self._turns)
            try:
                self._local.conn = self._open()
            finally:
                fcntl.flock(self._turns, fcntl.LOCK_UN)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")  # the IN lists of the q intersections
        if self._path != ":memory:":
            conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoint.py does it, off this path
        for name, function in self._functions.items():
            conn.create_function(name, 2, function, deterministic=True)
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _checkpoint_connection(self) -> sqlite3.Connection:
        # A short busy timeout: a RESTART checkpoint waits for readers while it holds the
        # writers' turn, and gives up (to try again later) rather than stall them.
        return sqlite3.connect(self._path, isolation_level=None, check_same_thread=False,
                               timeout=1.0)

    @contextmanager
    def _write_turn(self) -> Iterator[None]:
        """The writers' turn: this process's lock, then the processes' flock (see module
        docstring)."""
        with self._write_lock:
            if self._turns is not None:
                take_turn(self._turns)
            try:
                yield
            finally:
                if self._turns is not None:
                    fcntl.flock(self._turns, fcntl.LOCK_UN)

    def _connection(self) -> sqlite3.Connection:
        if self._shared is not None:
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        with self._idle:
            if self._closed:
                raise StoreClosed("the SQLite store is closed")
            self._active += 1
        try:
            with self._transaction(write=write) as conn:
                yield conn
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """See `Database.fetch_one`: in autocommit, without the BEGIN and COMMIT of a read
        transaction (a third of the statements of a retrieval)."""
        if self._shared is not None:  # one connection: another thread may be inside BEGIN
            with self.transaction(write=False) as conn:
                return conn.execute(sql, params).fetchone()
        with self._idle:
            if self._closed:
                raise StoreClosed("the SQLite store is closed")
            self._active += 1
        try:
            return self._connection().execute(sql, params).fetchone()
        finally:
            with self._idle:
                self._active -= 1
                if self._closed:  # only close() waits on it
                    self._idle.notify_all()

    async def fetch_one_async(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """See `Database.fetch_one_async`: inline (a read of this process's page cache costs
        less than handing it to a thread)."""
        return self.fetch_one(sql, params)

    @asynccontextmanager
    async def loop_reads(self) -> AsyncIterator[None]:
        """See `Database.loop_reads`: SQLite reads inline always."""
        yield

    @contextmanager
    def budget(self, conn: Connection, deadline: float) -> Iterator[None]:
        """See `Database.budget`: SQLite's progress handler interrupts the statement."""
        check_deadline(deadline)
        raw: sqlite3.Connection = conn  # type: ignore[assignment]
        raw.set_progress_handler(lambda: _clock() > deadline, PROGRESS_OPS)
        try:
            yield
        except sqlite3.OperationalError as error:
            if str(error) == "interrupted" and _clock() > deadline:
                raise OverBudget("the read ran past its deadline") from error
            raise
        finally:
            raw.set_progress_handler(None, 0)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        conn = self._connection()
        if not write and self._shared is None:
            conn.execute("BEGIN")
            try:
                yield conn  # type: ignore[misc]
            finally:
                conn.execute("COMMIT")
            return
        with self._write_turn():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn  # type: ignore[misc]
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        if self._checkpoints is not None:
            self._checkpoints.wrote()

    def close(self) -> None:
        """Refuse new transactions, wait (up to 30 s) for those under way, then close."""
        with self._idle:
            self._closed = True
            self._idle.wait_for(lambda: self._active == 0, timeout=30.0)
        if self._checkpoints is not None:
            self._checkpoints.close()
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        if self._turns is not None:
            os.close(self._turns)
            self._turns = None


@lru_cache(maxsize=4096)
def _to_pyformat(sql: str) -> str:
    return re.sub(r"\?", "%s", sql)


class _PgConnection:
    """A psycopg connection as the store's `Connection`. `prepare=None` lets psycopg prepare
    a statement on the server once it has run five times on the connection (writes and point
    reads: the same few key-lookup statements, each parsed and planned once instead of every
    time); `False` never does (queries: their shapes vary, and a generic plan made for one
    value may suit another poorly)."""

    def __init__(self, conn: Any, *, prepare: bool | None = False) -> None:
        self._conn = conn
        self._prepare = prepare

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cursor: Cursor = self._conn.execute(_to_pyformat(sql), params, prepare=self._prepare)
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if len(rows) == 1:  # one round trip; psycopg pipelines many rows, with several syncs
            self._conn.execute(_to_pyformat(sql), rows[0], prepare=self._prepare)
        elif rows:
            with self._conn.cursor() as cursor:
                cursor.executemany(_to_pyformat(sql), rows)


def _lost(error: Exception, conn: Any) -> bool:
    """Whether a point read failed because its pooled connection was lost (PostgreSQL
    restarted, its backend was killed): the pool drops such a connection when it comes back,
    and a read may simply be made again on another one."""
    import psycopg

    return isinstance(error, psycopg.OperationalError) and bool(conn.broken)


LOOP_POOL_SIZE = 4
"""Connections of the event loop's own pool (`PostgresDatabase.loop_reads`): a point read
holds one for a round trip, so a few serve many clients (16 clients: 6,400-6,900 answers/s
with 1, 2, 4 or 8)."""


class PostgresDatabase:
    """A psycopg connection pool; `url` is a libpq URL (options=-csearch_path=... works)."""

    dialect: Dialect = "postgres"

    def __init__(self, url: str, *, max_size: int = 16) -> None:
        import psycopg_pool  # imported here so that SQLite-only users never load libpq

        self._url = url
        self._max_size = max_size
        self._pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=max_size, open=True, kwargs={"autocommit": True}
        )
        self._pool.wait(timeout=10.0)
        self._loop_pool: tuple[asyncio.AbstractEventLoop, Any] | None = None

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        with self._pool.connection() as conn, conn.transaction():
            yield _PgConnection(conn, prepare=None if write else False)

    def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """See `Database.fetch_one`: in autocommit (no BEGIN and COMMIT round trips), and
        read again on another connection while the pool hands out lost ones (`_lost`)."""
        tries = self._max_size + 1  # the pool may hold that many lost connections
        while True:
            tries -= 1
            with self._pool.connection() as conn:
                try:
                    return _PgConnection(conn, prepare=None).execute(sql, params).fetchone()
                except Exception as error:
                    if not (tries and _lost(error, conn)):
                        raise

    async def fetch_one_async(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """See `Database.fetch_one_async`. On the loop, the round trip to the server is an
        await: no worker thread to wake and no GIL to hand back and forth (16 clients
        retrieving one entity: about 3,600 answers/s through the thread pool, 6,500/s so).
        Lost connections are read past as in `fetch_one`."""
        held = self._loop_pool
        if held is None or held[0] is not asyncio.get_running_loop():
            return await asyncio.to_thread(self.fetch_one, sql, params)
        tries = LOOP_POOL_SIZE + 1
        while True:
            tries -= 1
            async with held[1].connection() as conn:
                try:
                    cursor = await conn.execute(_to_pyformat(sql), params)  # prepared
                    return await cursor.fetchone()
                except Exception as error:
                    if not (tries and _lost(error, conn)):
                        raise

    @asynccontextmanager
    async def loop_reads(self) -> AsyncIterator[None]:
        """See `Database.loop_reads`: an async pool of up to `LOOP_POOL_SIZE` connections,
        bound to the running loop (another loop's reads keep to the worker threads)."""
        import psycopg_pool

        pool = psycopg_pool.AsyncConnectionPool(
            self._url, min_size=1, max_size=LOOP_POOL_SIZE, open=False,
            kwargs={"autocommit": True})
        await pool.open(wait=True, timeout=10.0)
        self._loop_pool = (asyncio.get_running_loop(), pool)
        try:
            yield
        finally:
            self._loop_pool = None
            await pool.close()

    @contextmanager
    def budget(self, conn: Connection, deadline: float) -> Iterator[None]:
        """See `Database.budget`: the transaction's `statement_timeout` (1 ms at least)."""
        import psycopg

        check_deadline(deadline)
        left_ms = max(1, int((deadline - _clock()) * 1000))
        conn.execute("SELECT set_config('statement_timeout', ?, true)", (f"{left_ms}ms",))
        try:
            yield
        except psycopg.errors.QueryCanceled as error:
            raise OverBudget("the read ran past its deadline") from error

    def close(self) -> None:
        self._pool.close()


def open_database(url: str, *, sqlite_functions: dict[str, Any] | None = None) -> Database:
    """`sqlite:///relative.db`, `sqlite:////abs.db`, `sqlite://:memory:` or `postgresql://...`."""
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        path = url.removeprefix("sqlite://")
        path = path.removeprefix("/") if path != ":memory:" else path
        return SqliteDatabase(path, functions=sqlite_functions)
    if scheme in ("postgresql", "postgres"):
        return PostgresDatabase(url)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///path.db or postgresql://...")
