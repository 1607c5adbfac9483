"""Tables of the SQL store, in the two dialects. `attr_index` comes from the query package,
which owns how q-language leaves are indexed."""

from __future__ import annotations

from cityhub.ngsild.query import index_ddl
from cityhub.store.database import Dialect


def schema(dialect: Dialect) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    real = "REAL" if dialect == "sqlite" else "DOUBLE PRECISION"
    return [
        "CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY)",
        f"""CREATE TABLE IF NOT EXISTS entities (
            eid {serial},
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (tenant, id))""",
        # A tenant's entities in eid order, for a page of a query without filters (no sort of
        # the whole tenant): on SQLite an index on tenant holds the rowid (eid) after it.
        "CREATE INDEX IF NOT EXISTS entities_tenant ON entities (tenant"
        + (")" if dialect == "sqlite" else ", eid)"),
        *_geo_ddl(dialect),
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
        # Earlier formats' indexes, superseded (attr_index_lookup covers eid; attr_index_entity
        # covers what attr_index_eid served; geo_index_box bounded one side of the box only):
        # dropped so that writes stop maintaining them.
        "DROP INDEX IF EXISTS attr_index_value",
        "DROP INDEX IF EXISTS attr_index_eid",
        "DROP INDEX IF EXISTS geo_index_box",
    ]


def _geo_ddl(dialect: Dialect) -> list[str]:
    """`geo_index`: one bounding box per GeoProperty instance, searched through a spatial
    index so that a box query reads only the boxes near it: an R*Tree virtual table on
    SQLite (kept in step by triggers, keyed by the row's `gid`), a GiST index on the box on
    PostgreSQL (the built-in `box` type, no PostGIS needed)."""
    if dialect == "postgres":
        return [
            """CREATE TABLE IF NOT EXISTS geo_index (
                tenant TEXT NOT NULL, eid BIGINT NOT NULL, path TEXT NOT NULL,
                min_x DOUBLE PRECISION NOT NULL, min_y DOUBLE PRECISION NOT NULL,
                max_x DOUBLE PRECISION NOT NULL, max_y DOUBLE PRECISION NOT NULL)""",
            f"CREATE INDEX IF NOT EXISTS geo_index_gist ON geo_index USING gist ({PG_BOX})",
            "CREATE INDEX IF NOT EXISTS geo_index_eid ON geo_index (eid)",
        ]
    return [
        """CREATE TABLE IF NOT EXISTS geo_index (
            gid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, eid INTEGER NOT NULL,
            path TEXT NOT NULL, min_x REAL NOT NULL, min_y REAL NOT NULL,
            max_x REAL NOT NULL, max_y REAL NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS geo_index_eid ON geo_index (eid)",
        # 32-bit float boxes, rounded outwards: a superset, and the store tests exactly after.
        "CREATE VIRTUAL TABLE IF NOT EXISTS geo_rtree USING rtree(gid, min_x, max_x, min_y, max_y)",
        """CREATE TRIGGER IF NOT EXISTS geo_index_added AFTER INSERT ON geo_index BEGIN
            INSERT INTO geo_rtree VALUES (new.gid, new.min_x, new.max_x, new.min_y, new.max_y);
            END""",
        """CREATE TRIGGER IF NOT EXISTS geo_index_removed AFTER DELETE ON geo_index BEGIN
            DELETE FROM geo_rtree WHERE gid = old.gid;
            END""",
    ]


PG_BOX = "box(point(min_x, min_y), point(max_x, max_y))"


def sqlite_legacy_geo(columns: list[str]) -> list[str]:
    """Statements that move a `geo_index` of the earlier SQLite format (no `gid`, given its
    column names) aside as `geo_index_v1`, before `schema` creates the new one; then
    `SQLITE_GEO_COPY` moves its rows over. Empty when the table is new or already current."""
    if not columns or "gid" in columns:
        return []
    return ["DROP INDEX IF EXISTS geo_index_box", "DROP INDEX IF EXISTS geo_index_eid",
            "ALTER TABLE geo_index RENAME TO geo_index_v1"]


SQLITE_GEO_COPY = [
    "INSERT INTO geo_index (tenant, eid, path, min_x, min_y, max_x, max_y) "
    "SELECT tenant, eid, path, min_x, min_y, max_x, max_y FROM geo_index_v1",
    "DROP TABLE geo_index_v1",
]
