"""The `attr_index` table: one row per queryable leaf of an entity, so q runs on indexes.

A row is `(tenant, eid, path, kind, num, txt)`; the store supplies tenant and eid and takes
the rest from `index_rows(entity)`. `path` is a node key (targets.path_key: a JSON array of
names, e.g. `["https://ex.org/speed","observedAt"]`), or `@type` / `@scope` for the
entity's types and scopes. `kind`, `num` and `txt` are a leaf (values.py); a node with no
scalar leaf gets one row of kind "x" so that existence tests see it.

The store deletes an entity's rows with `DELETE FROM attr_index WHERE eid = ?` and inserts
the new ones on every write. PostgreSQL indexes `left(txt, 150)` rather than txt, because a
B-tree entry must stay under about 2.7 kB and string values may be longer; sql.py adds the
matching `left(...)` conditions.
"""

from __future__ import annotations

from typing import Literal

from cityhub.ngsild.model import Entity
from cityhub.ngsild.query.plan import SCOPE_KEY, TYPE_KEY
from cityhub.ngsild.query.targets import entity_scopes, entity_types, node_leaves, walk
from cityhub.ngsild.query.values import PRESENT, STRING

INDEX_COLUMNS = ("path", "kind", "num", "txt")
TXT_PREFIX = 150

IndexRow = tuple[str, str, float | None, str | None]
Dialect = Literal["sqlite", "postgres"]


def index_rows(entity: Entity) -> list[IndexRow]:
    """The index rows of one entity, without duplicates, in the order of INDEX_COLUMNS."""
    rows: dict[IndexRow, None] = {}
    for key, node in walk(entity):
        leaves = node_leaves(node)
        if not leaves:
            rows[(key, PRESENT, None, None)] = None
        for kind, num, txt in leaves:
            rows[(key, kind, num, txt)] = None
    for name in entity_types(entity):
        rows[(TYPE_KEY, STRING, None, name)] = None
    for scope in entity_scopes(entity):
        rows[(SCOPE_KEY, STRING, None, scope)] = None
    return list(rows)


def index_ddl(dialect: Dialect, *, references: str | None = "entities(eid)") -> list[str]:
    """CREATE TABLE and CREATE INDEX statements (idempotent) for attr_index.

    `references` is the entity row's primary key that `eid` points at (rows are deleted
    with their entity); None leaves the foreign key out."""
    if dialect == "sqlite":
        eid, num, txt, txt_key = "INTEGER", "REAL", "TEXT", "txt"
    elif dialect == "postgres":
        eid, num, txt = "BIGINT", "DOUBLE PRECISION", 'TEXT COLLATE "C"'
        txt_key = f"(left(txt, {TXT_PREFIX}))"
    else:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    foreign = f" REFERENCES {references} ON DELETE CASCADE" if references else ""
    return [
        "CREATE TABLE IF NOT EXISTS attr_index ("
        "tenant TEXT NOT NULL, "
        f"eid {eid} NOT NULL{foreign}, "
        "path TEXT NOT NULL, "
        "kind TEXT NOT NULL, "
        f"num {num}, "
        f"txt {txt})",
        "CREATE INDEX IF NOT EXISTS attr_index_num ON attr_index (tenant, path, kind, num)",
        f"CREATE INDEX IF NOT EXISTS attr_index_txt ON attr_index (tenant, path, kind, {txt_key})",
        "CREATE INDEX IF NOT EXISTS attr_index_eid ON attr_index (eid)",
    ]
