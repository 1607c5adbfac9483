"""Fixtures of the store contract suites: a `SqlStore` on every back-end (`store_url` from
tests/conftest.py) and an `EntityService` on it with a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.store.helpers import Clock


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
