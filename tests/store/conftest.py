"""Fixtures of the store contract suites: a `SqlStore` on every back-end, an `EntityService`
on it with a clock the test moves by hand, and a read-only store for the many query cases.

A fresh PostgreSQL schema per test (tests/conftest.py `pg_url`) costs more than the test, so
here `store_url` is one database per module and back-end, emptied before each test: every test
still starts with an empty database and a new `SqlStore` (empty caches, new pool).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.conftest import pg_schema
from tests.store.helpers import Clock

BACKENDS = ["sqlite", "postgres"]


@contextmanager
def database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new empty database (an SQLite file, a PostgreSQL schema) as a store URL."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'hub.db'}"
        return
    with pg_schema("store") as url:
        yield url


def empty(url: str) -> None:
    """Delete every row of every table (the tables themselves stay)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            # Not the shadow tables of the R*Tree: emptying them by hand corrupts it.
            tables = conn.execute("SELECT name FROM pragma_table_list WHERE schema = 'main' "
                                  "AND type IN ('table', 'virtual') "
                                  "AND name NOT LIKE 'sqlite_%'").fetchall()
            for (table,) in tables:
                conn.execute(f'DELETE FROM "{table}"')  # noqa: S608 - names from the catalogue
        conn.close()
        return
    import psycopg

    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()
        for (table,) in tables:
            conn.execute(f'DELETE FROM "{table}"')  # noqa: S608 - names from the catalogue


@pytest.fixture(scope="module", params=BACKENDS)
def module_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with database(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture
def store_url(module_store_url: str) -> str:
    """Every back-end in turn, empty (overrides the fresh-database `store_url` for speed)."""
    empty(module_store_url)
    return module_store_url


@pytest.fixture(scope="module", params=BACKENDS)
def read_only_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database per module and back-end that the module fills once and then only reads."""
    with database(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = SqlStore.open(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store: SqlStore, clock: Clock) -> EntityService:
    return EntityService(store, clock)
