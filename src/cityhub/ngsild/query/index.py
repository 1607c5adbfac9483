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

import math
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Literal

from cityhub.ngsild.model import VALUE_MEMBER, Entity
from cityhub.ngsild.query.ast import CORE_MEMBERS
from cityhub.ngsild.query.plan import SCOPE_KEY, TYPE_KEY
from cityhub.ngsild.query.targets import (
    INDEXED_MEMBERS,
    LANGUAGE,
    OBJECT,
    PLAIN,
    _walk_members,
    entity_scopes,
    entity_types,
    node_leaves,
    path_key,
)
from cityhub.ngsild.query.values import NUMBER, PRESENT, STRING, Leaf, value_leaves
from cityhub.ngsild.query.values import OBJECT as RELATED

INDEX_COLUMNS = ("path", "kind", "num", "txt")
TXT_PREFIX = 150

IndexRow = tuple[int, str, float | None, str | None]
Dialect = Literal["sqlite", "postgres"]
Rows = dict[IndexRow, None]  # an ordered set: the first occurrence of a row keeps its place
_EXACT_INT = 2**53  # integers below this in magnitude are exact, finite floats

# The layout of one attribute instance, worked out once per shape (attribute path, type and
# member names) instead of for every instance: the node key, where the target value is, and
# the keys of the indexed core members present, in the order targets.walk yields them.
_Layout = tuple[int, str, str, tuple[tuple[str, int], ...], bool]
_LAYOUTS_MAX = 4096
_layouts: dict[tuple[tuple[str, ...], str, tuple[str, ...]], _Layout | None] = {}


def index_rows(entity: Entity) -> list[IndexRow]:
    """The index rows of one entity, without duplicates, in the order of INDEX_COLUMNS.

    The rows and their order are those of `targets.walk` turned into leaves (the property
    tests hold the two to it); this walks the instances itself because it runs for every
    entity written, so the per-node work is cut down to filling values into a cached layout."""
    rows: Rows = {}
    attrs = entity.get("attrs")
    if isinstance(attrs, dict):
        _attrs_rows(attrs, rows)
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
    rows: Rows = {}
    _attrs_rows(part, rows)
    keyed: dict[int, set[IndexRow]] = {}
    for row in rows:
        found = keyed.get(row[0])
        if found is None:
            keyed[row[0]] = {row}
        else:
            found.add(row)
    return {key: frozenset(found) for key, found in keyed.items()}


def _attrs_rows(attrs: dict[str, Any], rows: Rows) -> None:
    """The rows of every instance of `attrs`, with an explicit stack (payloads may nest
    deeply): the last instance first, and an instance's sub-attributes right after it."""
    stack: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    for attr, instances in attrs.items():
        segments: tuple[str, ...] = (attr,)
        if isinstance(instances, list):
            for instance in instances:
                if isinstance(instance, dict):
                    stack.append((segments, instance))
        elif isinstance(instances, dict):
            stack.append((segments, instances))
    while stack:
        segments, instance = stack.pop()
        kind = instance.get("type")
        if not isinstance(kind, str):
            kind = ""  # no type: the value is in "value", as for an unknown type
        shape = (segments, kind, tuple(instance))
        try:
            layout = _layouts[shape]
        except KeyError:
            layout = _layout(shape)
        if layout is None:
            continue
        key, member, mode, cores, has_subs = layout
        value = instance.get(member)
        if mode == PLAIN:
            _value_rows(key, value, False, rows)
        elif mode == OBJECT:
            if member == "objectList" and isinstance(value, list):
                value = [o.get("object") if isinstance(o, dict) else o for o in value]
            _value_rows(key, value, True, rows)
        else:
            _node_rows(key, value, LANGUAGE, rows)
        for core, core_key in cores:
            _value_rows(core_key, instance[core], False, rows)
        if isinstance(value, dict):
            _member_rows(segments, value, rows)
        if has_subs:
            subs = instance["sub"]
            if isinstance(subs, dict):
                for name, items in subs.items():
                    if name in CORE_MEMBERS:
                        continue
                    inner = (*segments, name)
                    if isinstance(items, list):
                        stack.extend((inner, s) for s in items if isinstance(s, dict))
                    elif isinstance(items, dict):
                        stack.append((inner, items))


def _layout(shape: tuple[tuple[str, ...], str, tuple[str, ...]]) -> _Layout | None:
    """Work out an instance shape's layout (targets._seed and targets.walk), and cache it."""
    segments, kind, members = shape
    key = path_key(segments)
    layout: _Layout | None = None
    if key is not None:
        if kind in ("Relationship", "ListRelationship"):
            member, mode = ("object" if kind == "Relationship" else "objectList"), OBJECT
        elif kind == "LanguageProperty":
            member, mode = "languageMap", LANGUAGE
        else:
            member, mode = VALUE_MEMBER.get(kind, "value"), PLAIN
        cores = []
        for core in INDEXED_MEMBERS.intersection(members):  # walk's order, same set
            core_key = path_key((*segments, core))
            if core_key is not None:
                cores.append((core, core_key))
        layout = (key, member, mode, tuple(cores), "sub" in members)
    if len(_layouts) >= _LAYOUTS_MAX:
        _layouts.clear()  # a stream of ever new shapes must not grow the cache without bound
    _layouts[shape] = layout
    return layout


def _value_rows(key: int, value: Any, relationship: bool, rows: Rows) -> None:
    """The rows of a node holding a plain or relationship target value; the common scalars
    (a finite number, a string that cannot be a date or time) without building leaves."""
    exact = type(value)
    if exact is float:
        if math.isfinite(value):
            rows[(key, NUMBER, value, None)] = None
            return
    elif exact is int and -_EXACT_INT < value < _EXACT_INT:
        rows[(key, NUMBER, float(value), None)] = None
        return
    elif exact is str:
        if relationship:
            rows[(key, RELATED, None, value)] = None
            return
        if not value[:2].isdigit():
            rows[(key, STRING, None, value)] = None
            return
        for kind, num, txt in _text_leaves(value):  # one or two: a string always has a leaf
            rows[(key, kind, num, txt)] = None
        return
    else:
        _node_rows(key, value, OBJECT if relationship else PLAIN, rows)
        return
    rows[(key, PRESENT, None, None)] = None


@lru_cache(maxsize=4096)
def _text_leaves(text: str) -> tuple[Leaf, ...]:
    """The leaves of a string value (cached: a batch repeats its timestamps)."""
    return tuple(value_leaves(text))


def _node_rows(key: int, value: Any, mode: str, rows: Rows) -> None:
    leaves = node_leaves((value, mode))
    if not leaves:
        rows[(key, PRESENT, None, None)] = None
    for kind, num, txt in leaves:
        rows[(key, kind, num, txt)] = None


def _member_rows(segments: tuple[str, ...], value: dict[str, Any], rows: Rows) -> None:
    """The rows of the members of a compound value (rare: targets walks them)."""
    for key, (item, mode) in _walk_members(segments, value):
        _node_rows(key, item, mode, rows)



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
