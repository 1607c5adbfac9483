"""Databases holding `entities` + `attr_index` for the SQL tests: an in-memory SQLite, and
a schema of its own on the real PostgreSQL (skipped when unreachable, unless
CITYHUB_REQUIRE_SERVICES=1, which makes it a failure)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cityhub.ngsild.query import index_ddl, sqlite_regexp

PG_URL = os.environ.get("CITYHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="module")
def sqlite_db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.create_function("regexp", 2, sqlite_regexp, deterministic=True)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE entities (eid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, "
                 "id TEXT NOT NULL)")
    for statement in index_ddl("sqlite"):
        conn.execute(statement)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def pg_optional() -> Iterator[tuple[Any, str]]:
    """(connection, "") in a fresh schema, or (None, why) when PostgreSQL is unreachable."""
    import psycopg

    try:
        conn = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL is not reachable at {PG_URL}: {error}"
        if os.environ.get("CITYHUB_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " and CITYHUB_REQUIRE_SERVICES=1")
        yield None, reason
        return
    schema = f"cityhub_query_{uuid.uuid4().hex[:12]}"
    conn.execute(f"CREATE SCHEMA {schema}")
    try:
        conn.execute(f"SET search_path TO {schema}")
        conn.execute("CREATE TABLE entities (eid BIGINT PRIMARY KEY, tenant TEXT NOT NULL, "
                     "id TEXT NOT NULL)")
        for statement in index_ddl("postgres"):
            conn.execute(statement)
        yield conn, ""
    finally:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


@pytest.fixture
def pg_db(pg_optional: tuple[Any, str]) -> Any:
    conn, reason = pg_optional
    if conn is None:
        pytest.skip(reason)
    return conn
