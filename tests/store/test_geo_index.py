"""The geo index: boxes searched through an R*Tree on SQLite (a GiST index on PostgreSQL),
and a store file of the earlier format (a plain `geo_index` table) keeps answering."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cityhub.ngsild.geoquery import parse_geoquery
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.store.helpers import query, vehicle

MADRID = parse_geoquery("near;maxDistance==2000", "Point", "[-3.70,40.41]")


def near_ids(store: SqlStore) -> list[str]:
    return [e["id"] for e in store.query("", query(geo=MADRID)).entities]


def test_sqlite_geo_query_searches_the_rtree(tmp_path: Path) -> None:
    store = SqlStore.open(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        EntityService(store).batch("", "upsert", [vehicle(n) for n in range(1, 4)])
        where, params = store._where("", query(geo=MADRID))
        with store.db.transaction(write=False) as conn:
            plan = [str(row[3]) for row in conn.execute(
                f"EXPLAIN QUERY PLAN SELECT e.doc FROM entities e WHERE {where}",  # noqa: S608 - compiled SQL
                params).fetchall()]
        assert any(step.startswith("SCAN r VIRTUAL TABLE INDEX") for step in plan), plan
        assert near_ids(store) == [f"urn:ngsi-ld:Vehicle:{n}" for n in range(1, 4)]
    finally:
        store.close()


def test_a_store_file_of_the_earlier_geo_format_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = SqlStore.open(f"sqlite:///{path}")
    EntityService(store).batch("", "upsert", [vehicle(1), vehicle(2)])
    store.close()
    with sqlite3.connect(path) as conn:  # rebuild geo_index as the earlier format had it
        conn.executescript("""
            CREATE TABLE old AS SELECT tenant, eid, path, min_x, min_y, max_x, max_y
                FROM geo_index;
            DROP TABLE geo_index;
            DELETE FROM geo_rtree;
            ALTER TABLE old RENAME TO geo_index;
            CREATE INDEX geo_index_box ON geo_index (tenant, path, min_x, max_x);
            CREATE INDEX geo_index_eid ON geo_index (eid);
        """)
    conn.close()
    store = SqlStore.open(f"sqlite:///{path}")
    try:
        assert near_ids(store) == ["urn:ngsi-ld:Vehicle:1", "urn:ngsi-ld:Vehicle:2"]
        EntityService(store).delete("", "urn:ngsi-ld:Vehicle:1")
        assert near_ids(store) == ["urn:ngsi-ld:Vehicle:2"]
    finally:
        store.close()


def test_postgres_geo_index_is_gist(store_url: str, store: SqlStore) -> None:
    if store.db.dialect != "postgres":
        return  # the SQLite side is the R*Tree test above
    with store.db.transaction(write=False) as conn:
        method = conn.execute(
            "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
            "WHERE c.relname = 'geo_index_gist' AND c.relnamespace = "
            "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())").fetchone()
    assert method == ("gist",)
