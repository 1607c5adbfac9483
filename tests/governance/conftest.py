"""Fixtures of the governance tests: a ledger on each real back-end, a signing key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityhub.governance.ledger import Ledger
from cityhub.governance.signing import load_or_create_key
from cityhub.store.database import Database, open_database


@pytest.fixture
def db(store_url: str) -> Iterator[Database]:
    database = open_database(store_url)
    yield database
    database.close()


@pytest.fixture
def ledger(db: Database) -> Ledger:
    return Ledger(db)


@pytest.fixture
def key(tmp_path: Path) -> Ed25519PrivateKey:
    return load_or_create_key(tmp_path / "keys" / "audit.pem")
