"""The `attr_index` table: one row per queryable leaf of an entity, so q runs on indexes.

A row is `(tenant, eid, path, kind, num, txt)`; the store supplies tenant and eid and takes
the rest from `index_rows(entity)`. `path` is a node's 64-bit key (targets.path_key, the hash
of a readable key such as `["https://ex.org/speed","observedAt"]`), or TYPE_KEY / SCOPE_KEY
(plan.py) for the entity's types and scopes. `kind`, `num` and `txt` are a leaf (values.py);
a node with no scalar leaf gets one row of kind "x" so that existence tests see it.

A write touches only the rows that changed (the store diffs an entity's stored rows against
the new ones), and a row costs as little to write as the queries allow: an integer path, and
one value index `(tenant, path, kind, num, txt, eid)` instead of one per value column. It
serves every term sql.py emits: existence uses `(tenant, path)`, numbers `(tenant, path,
kind, num)`, and strings, instants and times `(tenant, path, kind, num IS NULL, txt)` (their
num is always NULL). Ending in eid makes it a covering index: a lookup and the intersection
of several lookups read the index alone, never the table rows (at a million entities, the
table reads were most of a selective query's time). The store deletes rows
by eid itself (for updated and deleted entities), so there is no foreign key to check on
every inserted row. PostgreSQL indexes `left(txt, 150)` rather than txt, because a B-tree
entry must stay under about 2.7 kB and string values may be longer; sql.py adds the
matching `left(...)` conditions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from cityhub.ngsild.model import Entity
from cityhub.ngsild.query.plan import SCOPE_KEY, TYPE_KEY
from cityhub.ngsild.query.targets import entity_scopes, entity_types, node_leaves, walk
from cityhub.ngsild.query.values import PRESENT, STRING

INDEX_COLUMNS = ("path", "kind", "num", "txt")
TXT_PREFIX = 150

IndexRow = tuple[int, str, float | None, str | None]
Dialect = Literal["sqlite", "postgres"]


def index_rows(entity: Entity) -> list[IndexRow]:
    """The index rows of one entity, without duplicates, in the order of INDEX_COLUMNS."""
    rows: dict[IndexRow, None] = {}
    _node_rows(entity, rows)
    for name in entity_types(entity):
        rows[(TYPE_KEY, STRING, None, name)] = None
    for scope in entity_scopes(entity):
        rows[(SCOPE_KEY, STRING, None, scope)] = None
    return list(rows)


def attribute_rows(entity: Entity, names: Iterable[str]) -> dict[int, frozenset[IndexRow]]:
    """The index rows of some attributes of an entity, by path key: the part of
    `index_rows(entity)` whose paths start with one of `names`. A node's key is derived from
    its attribute's name, so no other attribute shares these keys; an update that changes
    only these attributes rewrites only these keys' rows (the store's narrow update)."""
    attrs = entity.get("attrs")
    part = {name: attrs[name] for name in names if name in attrs} if isinstance(attrs, dict) else {}
    rows: dict[IndexRow, None] = {}
    _node_rows({"attrs": part}, rows)
    keyed: dict[int, set[IndexRow]] = {}
    for row in rows:
        keyed.setdefault(row[0], set()).add(row)
    return {key: frozenset(found) for key, found in keyed.items()}


def _node_rows(entity: Entity, rows: dict[IndexRow, None]) -> None:
    for key, node in walk(entity):
        leaves = node_leaves(node)
        if not leaves:
            rows[(key, PRESENT, None, None)] = None
        for kind, num, txt in leaves:
            rows[(key, kind, num, txt)] = None


def index_ddl(dialect: Dialect) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements (idempotent) for attr_index."""
    if dialect == "sqlite":
        big, num, txt, txt_key = "INTEGER", "REAL", "TEXT", "txt"
    elif dialect == "postgres":
        big, num, txt = "BIGINT", "DOUBLE PRECISION", 'TEXT COLLATE "C"'
        txt_key = f"(left(txt, {TXT_PREFIX}))"
    else:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    return [
        "CREATE TABLE IF NOT EXISTS attr_index ("
        "tenant TEXT NOT NULL, "
        f"eid {big} NOT NULL, "
        f"path {big} NOT NULL, "
        "kind TEXT NOT NULL, "
        f"num {num}, "
        f"txt {txt})",
        "CREATE INDEX IF NOT EXISTS attr_index_lookup "
        f"ON attr_index (tenant, path, kind, num, {txt_key}, eid)",
        # An entity's rows, covered: the per-candidate probes of AND-ed q terms (sql.py) and
        # the store's diff of an updated entity's rows read this index alone.
        "CREATE INDEX IF NOT EXISTS attr_index_entity "
        f"ON attr_index (eid, path, kind, num, {txt_key})",
    ]
