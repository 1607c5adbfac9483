"""The access side's own tables (identity, signing keys, catalogue, sharing), created at startup
through the store's `Database`, next to (never inside) the store's schema."""

from __future__ import annotations

from cityhub.store.database import Database

_DDL_LOCK = 0x63697479_61636373  # advisory lock key ("cityaccs") serialising the DDL
_DDL = [
    """CREATE TABLE IF NOT EXISTS gov_signing_keys (
        kid TEXT PRIMARY KEY,
        private_pem TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        created_at TEXT NOT NULL,
        retired_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS gov_departments (
        name TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS gov_principals (
        subject TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        department TEXT NOT NULL,
        roles TEXT NOT NULL,
        clearance TEXT NOT NULL,
        created_at TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS ops_passwords (
        subject TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS gov_datasets (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (tenant, id))""",
    """CREATE TABLE IF NOT EXISTS gov_sharing_requests (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        doc TEXT NOT NULL,
        status TEXT NOT NULL,
        asked_at TEXT NOT NULL,
        decided_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS gov_grants (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        dataset TEXT NOT NULL,
        department TEXT NOT NULL,
        doc TEXT NOT NULL,
        expires_at TEXT,
        revoked_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS gov_grants_holder ON gov_grants (tenant, department)",
    """CREATE TABLE IF NOT EXISTS gov_subscription_owners (
        tenant TEXT NOT NULL,
        subscription_id TEXT NOT NULL,
        principal TEXT NOT NULL,
        purpose TEXT NOT NULL,
        PRIMARY KEY (tenant, subscription_id))""",
]


def create_tables(db: Database) -> None:
    """Create the tables if absent (several hub processes may start together)."""
    with db.transaction(write=True) as conn:
        if db.dialect == "postgres":
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_DDL_LOCK,))
        for statement in _DDL:
            conn.execute(statement)
