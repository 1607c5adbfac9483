"""Tables of the SQL store, in the two dialects. `attr_index` comes from the query package,
which owns how q-language leaves are indexed."""

from __future__ import annotations

from cityhub.ngsild.query import index_ddl
from cityhub.store.database import Dialect


def schema(dialect: Dialect) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    big = "INTEGER" if dialect == "sqlite" else "BIGINT"
    real = "REAL" if dialect == "sqlite" else "DOUBLE PRECISION"
    return [
        "CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY)",
        f"""CREATE TABLE IF NOT EXISTS entities (
            eid {serial},
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (tenant, id))""",
        f"""CREATE TABLE IF NOT EXISTS geo_index (
            tenant TEXT NOT NULL, eid {big} NOT NULL, path TEXT NOT NULL,
            min_x {real} NOT NULL, min_y {real} NOT NULL,
            max_x {real} NOT NULL, max_y {real} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS geo_index_box ON geo_index (tenant, path, min_x, max_x)",
        "CREATE INDEX IF NOT EXISTS geo_index_eid ON geo_index (eid)",
        """CREATE TABLE IF NOT EXISTS type_attrs (
            tenant TEXT NOT NULL, type TEXT NOT NULL, attr TEXT NOT NULL, kind TEXT NOT NULL,
            n INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant, type, attr, kind))""",
        f"""CREATE TABLE IF NOT EXISTS attr_history (
            hid {serial},
            tenant TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            attr TEXT NOT NULL,
            dataset_id TEXT NOT NULL DEFAULT '',
            observed_at {real} NOT NULL,
            recorded_at {real} NOT NULL,
            num {real},
            deleted INTEGER NOT NULL DEFAULT 0,
            instance TEXT NOT NULL)""",
        # Covers what temporal reads and aggregations need, so they never visit the table rows.
        """CREATE INDEX IF NOT EXISTS attr_history_entity
            ON attr_history (tenant, entity_id, attr, observed_at, deleted, num, dataset_id)""",
        """CREATE TABLE IF NOT EXISTS json_contexts (
            id TEXT PRIMARY KEY, url TEXT NOT NULL UNIQUE, record TEXT NOT NULL)""",
        *index_ddl(dialect),
        # Earlier formats' indexes, superseded (attr_index_lookup covers eid; geo_index_box
        # bounded one side of the box only): dropped so that writes stop maintaining them.
        "DROP INDEX IF EXISTS attr_index_value",
    ]
