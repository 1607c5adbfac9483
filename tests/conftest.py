"""Shared fixtures: real back-ends (SQLite file, the PostgreSQL server) and the hub's ASGI app.

Tests that need PostgreSQL skip with the reason when it does not answer, unless
CITYHUB_REQUIRE_SERVICES=1 (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.config import Settings

PG_BASE = os.environ.get("CITYHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def service_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or fail on CI) when a real service is not reachable."""
    if service_up(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CITYHUB_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and CITYHUB_REQUIRE_SERVICES=1")
    pytest.skip(message)


@contextmanager
def pg_schema(prefix: str = "t") -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped afterwards; the URL routes every table into it."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test."""
    with pg_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store back-end in turn (the contract suites use this)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """Settings of the hub under test; authentication off (as CITYHUB_AUTH=disabled on a
    loopback hub): the access tests build their own authenticated apps."""
    return Settings(data_dir=tmp_path / "data", store_url=sqlite_url,
                    public_url="http://testserver", auth="disabled")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the hub app in-process (lifespan run, SQLite store)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
