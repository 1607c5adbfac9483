"""Connections to the two SQL back-ends behind one tiny interface, so the store's SQL is shared.

SQL is written once with `?` placeholders; the PostgreSQL side rewrites them to `%s`.
SQLite runs in WAL mode with one connection per thread and one writer at a time; PostgreSQL
uses a connection pool, and each write transaction takes row locks, so several hub processes
can share one database.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

Dialect = Literal["sqlite", "postgres"]


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

    def close(self) -> None: ...


class StoreClosed(RuntimeError):
    """A transaction was asked of a database that has been closed."""


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
        if path == ":memory:":  # one connection, or each thread would see its own database
            self._shared = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")  # the IN lists of the q intersections
        for name, function in self._functions.items():
            conn.create_function(name, 2, function, deterministic=True)
        with self._all_lock:
            self._all.append(conn)
        return conn

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
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn  # type: ignore[misc]
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Refuse new transactions, wait (up to 30 s) for those under way, then close."""
        with self._idle:
            self._closed = True
            self._idle.wait_for(lambda: self._active == 0, timeout=30.0)
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


@lru_cache(maxsize=4096)
def _to_pyformat(sql: str) -> str:
    return re.sub(r"\?", "%s", sql)


class _PgConnection:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cursor: Cursor = self._conn.execute(_to_pyformat(sql), params, prepare=False)
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._conn.cursor() as cursor:
                cursor.executemany(_to_pyformat(sql), rows)


class PostgresDatabase:
    """A psycopg connection pool; `url` is a libpq URL (options=-csearch_path=... works)."""

    dialect: Dialect = "postgres"

    def __init__(self, url: str, *, max_size: int = 16) -> None:
        import psycopg_pool  # imported here so that SQLite-only users never load libpq

        self._pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=max_size, open=True, kwargs={"autocommit": True}
        )
        self._pool.wait(timeout=10.0)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        with self._pool.connection() as conn, conn.transaction():
            yield _PgConnection(conn)

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
