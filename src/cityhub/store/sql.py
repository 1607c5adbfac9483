"""The SQL store: entities, their query indexes and their history, on SQLite or PostgreSQL.

One implementation serves both back-ends (see database.py); the differences are the DDL and the
locks (`FOR UPDATE`, a per-id advisory lock) that SQLite does not need: it has a single writer.
Every write goes through `modify`: load the rows, run the pure mutation, diff old and new, write
the entity, its index rows and one history row per changed attribute instance, then let the
change listeners (subscriptions, the bus outbox) add their rows in the same transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from itertools import chain
from typing import Any, NamedTuple

import orjson

from cityhub.ngsild import geojson
from cityhub.ngsild.model import VALUE_MEMBER, Entity, Instance
from cityhub.ngsild.query import INDEX_COLUMNS as _INDEX_COLUMNS
from cityhub.ngsild.query import (
    Exists,
    IndexRow,
    Or,
    Path,
    QExpr,
    TypeName,
    attribute_rows,
    compile_q,
    compile_scope,
    compile_type,
    index_rows,
    lookup_rows,
    matches,
    needs_recheck,
    probe_q,
    sqlite_regexp,
    type_matches,
    type_rows,
)
from cityhub.store.database import (
    Connection,
    Database,
    Dialect,
    check_deadline,
    open_database,
    within,
)
from cityhub.store.group_commit import GroupCommitter
from cityhub.store.port import (
    AttributeInfo,
    Change,
    EntityQuery,
    Mutation,
    QueryResult,
    Touched,
    TypeInfo,
)
from cityhub.store.schema import PG_BOX, SQLITE_GEO_COPY, schema, sqlite_legacy_geo

ChangeListener = Callable[[Connection, list[Change]], None]
_SCHEMA_LOCK = 0x63_69_74_79_68_75_62  # "cityhub": the advisory lock that serialises DDL
_IGNORED_IN_DIFF = ("createdAt", "modifiedAt", "instanceId")
_GET_DOC = "SELECT doc FROM entities WHERE tenant = ? AND id = ?"
_INDEX_INSERT = f"INSERT INTO attr_index (tenant, eid, {', '.join(_INDEX_COLUMNS)})"
HISTORY_INSERT = ("INSERT INTO attr_history (tenant, entity_id, attr, dataset_id, observed_at, "
                  "recorded_at, num, deleted, instance)")
_GEO_INSERT = "INSERT INTO geo_index (tenant, eid, path, min_x, min_y, max_x, max_y)"
# Rows per multi-row INSERT statement on SQLite, largest first (see insert_rows); each size
# is one statement text per table, compiled once per connection. SQLite binds up to 32,766
# values per statement since 3.32 (999 before).
_ROWS_PER_STATEMENT = (512, 64, 8)
_MAX_VALUES = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999


def dumps(value: object) -> str:
    return orjson.dumps(value).decode()


@lru_cache(maxsize=4096)
def epoch(timestamp: str) -> float:
    """Seconds since 1970 of a stored timestamp (cached: a batch repeats its observedAt)."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


@lru_cache(maxsize=64)
def _values_sql(head: str, width: int, rows: int) -> str:
    marks = f"({', '.join('?' * width)})"
    return f"{head} VALUES {', '.join([marks] * rows)}"


def insert_rows(conn: Connection, dialect: Dialect, head: str,
                rows: Sequence[Sequence[Any]]) -> None:
    """`head` ("INSERT INTO t (columns)") for every row: on SQLite with a few multi-row
    statements, on PostgreSQL with executemany (psycopg pipelines it; multi-row statements
    there cost the hub more CPU per row: 1,835 against 2,740 raw creates per CPU-s).

    One statement per row (executemany) cost SQLite twice: a step and reset per row, and for
    a statement that fires a trigger (geo_index keeps the R*Tree in step) a statement journal
    per row. Inside the group committer's SAVEPOINT that journal lives in memory, and closing
    it walks the transaction's whole sub-journal from its start, so a batch's geo inserts
    grew quadratic (1,000 rows took 12 ms in a new file, 125 ms at 20,000 entities in it).
    Multi-row statements run that once per 512 rows.

    A multi-row statement that may abort half-way (any NOT NULL column) opens a statement
    journal too, so that the abort can undo its first rows. `INSERT OR FAIL` keeps those rows
    instead, and needs no journal: half the cost of an attr_index row (12.3-13.7 against
    5.7-5.9 µs in a 300,000-row test). Nothing is lost by it: a failing insert raises, and the
    caller's transaction (the group committer's SAVEPOINT) is rolled back whole.
    """
    if not rows:
        return
    if dialect == "sqlite":
        head = head.replace("INSERT INTO", "INSERT OR FAIL INTO", 1)
    width, at = len(rows[0]), 0
    for size in _ROWS_PER_STATEMENT if dialect == "sqlite" else ():
        if size * width > _MAX_VALUES:
            continue
        sql = _values_sql(head, width, size)
        while len(rows) - at >= size:
            conn.execute(sql, list(chain.from_iterable(rows[at : at + size])))
            at += size
    if at < len(rows):
        conn.executemany(_values_sql(head, width, 1), rows[at:])


def _same_instance(a: Instance, b: Instance) -> bool:
    """Whether two instances are equal but for their system members (a history row records
    the others); compared in place, without copies."""
    if a == b:
        return True
    for key in a.keys() | b.keys():
        if key in _IGNORED_IN_DIFF:
            continue
        if key not in a or key not in b:
            return False
        mine, theirs = a[key], b[key]
        if mine == theirs:
            continue
        if key != "sub" or not isinstance(mine, dict) or not isinstance(theirs, dict):
            return False
        # sub-attributes carry their own timestamps
        if mine.keys() != theirs.keys() or not all(
                _same_instance(sub, theirs[iri]) for iri, sub in mine.items()):
            return False
    return True


def _instances_by_key(entity: Entity | None, only: tuple[str, ...] | None = None
                      ) -> dict[tuple[str, str], Instance]:
    if entity is None:
        return {}
    attrs = entity["attrs"]
    named = attrs.items() if only is None else ((iri, attrs.get(iri, ())) for iri in only)
    return {
        (iri, inst.get("datasetId", "")): inst
        for iri, instances in named
        for inst in instances
    }


def numeric_value(instance: Instance) -> float | None:
    value = instance.get(VALUE_MEMBER.get(instance.get("type", ""), "value"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class SqlStore:
    """The `Store` port on a SQL database (see module docstring)."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self.listeners: list[ChangeListener] = []
        self._known_tenants: set[str] = set()
        # SQLite has one writer at a time and a commit is most of a small write: writes are
        # grouped (group_commit.py). PostgreSQL commits concurrent transactions in parallel
        # (and flushes their WAL together); there a write is several round trips, which a
        # single writer would serialise, so each write keeps its own transaction.
        self._writer = GroupCommitter(database) if database.dialect == "sqlite" else None
        with self.db.transaction(write=True) as conn:
            if self.db.dialect == "postgres":
                # Hubs starting together would race on CREATE TABLE IF NOT EXISTS otherwise.
                conn.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            legacy: list[str] = []
            if self.db.dialect == "sqlite":
                columns = [row[1] for row in
                           conn.execute("PRAGMA table_info(geo_index)").fetchall()]
                legacy = sqlite_legacy_geo(columns)
            for statement in legacy:
                conn.execute(statement)
            for statement in schema(self.db.dialect):
                conn.execute(statement)
            for statement in SQLITE_GEO_COPY if legacy else []:
                conn.execute(statement)

    @classmethod
    def open(cls, url: str) -> SqlStore:
        return cls(open_database(url, sqlite_functions={"regexp": sqlite_regexp}))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.db.close()

    # -- reads -------------------------------------------------------------------------------

    def tenant_exists(self, tenant: str) -> bool:
        if tenant == "" or tenant in self._known_tenants:
            return True
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT 1 FROM tenants WHERE name = ?", (tenant,)).fetchone()
        if row:
            self._known_tenants.add(tenant)
        return row is not None

    def get(self, tenant: str, entity_id: str) -> Entity | None:
        row = self.db.fetch_one(_GET_DOC, (tenant, entity_id))
        return None if row is None else orjson.loads(row[0])

    async def get_async(self, tenant: str, entity_id: str) -> Entity | None:
        row = await self.db.fetch_one_async(_GET_DOC, (tenant, entity_id))
        return None if row is None else orjson.loads(row[0])

    def _source(self, conn: Connection, tenant: str, query: EntityQuery) -> _Source:
        """Where a query's entities `e` come from, in eid order (see `_Source`).

        A query for one type walks that type's index rows in eid order and joins the
        entities (`type_rows`; ordered by the index's eid: by `e.eid`, SQLite would sort),
        so that a page reads about its own rows. With `attrs` or a `q` of one index lookup
        (and for those alone, over the tenant's entities in eid order, `entities_tenant`)
        the walk probes each row for them (`probe_q`) where that pays (`_walk_pays`). Any
        other query filters the entities (`_where`)."""
        dialect = self.db.dialect
        walkable = (query.ids is None and query.id_pattern is None and query.scope is None
                    and query.geo is None and (query.q is None or query.attrs_any is None))
        walked = (type_rows(query.types, dialect, "t", tenant=tenant)
                  if walkable and query.types is not None else None)
        probed = query.q if query.q is not None else _any_attribute(query.attrs_any)
        probes = None
        if walkable and probed is not None and (walked is not None or query.types is None):
            if self._walk_pays(conn, tenant, query):
                probes = probe_q(probed, dialect)
            else:
                walked = None
        if walked is not None:
            where, params = walked
            rows = "attr_index t JOIN entities e ON e.eid = t.eid"
            if probes is None:  # one index row per entity of the type: count those alone
                return _Source(rows, "attr_index t", where, params, "t.eid", False)
            return _Source(rows, rows, f"{where} AND {probes[0]}", [*params, *probes[1]],
                           "t.eid", False)
        if probes is not None:
            return _Source("entities e", "entities e", f"e.tenant = ? AND {probes[0]}",
                           [tenant, *probes[1]], "e.eid", False)
        types_in_python = _types_in_python(query)
        where, params = self._where(tenant, query, types_in_sql=not types_in_python)
        return _Source("entities e", "entities e", where, params, "e.eid", types_in_python)

    def _walk_pays(self, conn: Connection, tenant: str, query: EntityQuery) -> bool:
        """Whether a page of a query with `attrs` or a `q` is cheaper walked and probed than
        listed. W entities are walked (of the type, or of the tenant: the census, `type_attrs`)
        and at most M match. A page walks about (offset + limit) W / M rows, the list holds
        M: walk when M * M > (offset + limit) * W. For `attrs`, M is the census's; for a `q`
        of one index lookup, the lookup's index rows counted up to the bound (never more
        than about sqrt((offset + limit) W) of them); any other `q` is listed. Never for a
        count, which sees every match either way and lists only M (at a million entities,
        an attribute that 100 have: 1.7 s walked, 0.1 ms listed)."""
        if query.count or (query.q is not None and needs_recheck(query.q)):
            return False
        attrs = query.attrs_any or ()
        # W, and M for `attrs`: the census rows with attr "" count a type's entities.
        sql = ("SELECT coalesce(sum(CASE WHEN attr = '' THEN n END), 0), "
               "coalesce(sum(CASE WHEN attr IN ({}) THEN n END), 0) "
               "FROM type_attrs WHERE tenant = ?").format(
                   ", ".join("?" for _ in attrs) or "NULL")  # PostgreSQL refuses `IN ()`
        params: list[Any] = [*attrs, tenant]
        if isinstance(query.types, TypeName):
            sql += " AND type = ?"
            params.append(query.types.name)
        walked, matching = conn.execute(sql, params).fetchone()
        page = query.offset + query.limit
        if query.q is not None:  # `attrs` and a `q` are never walked together
            lookup = lookup_rows(query.q, self.db.dialect, "c", tenant=tenant)
            if lookup is None:
                return False
            bound = math.isqrt(page * walked) + 1
            matching = conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM attr_index c WHERE {lookup[0]} LIMIT ?) b",
                [*lookup[1], bound]).fetchone()[0]
        return bool(matching) and matching * matching > page * walked

    def _where(
        self, tenant: str, query: EntityQuery, *, types_in_sql: bool = True
    ) -> tuple[str, list[Any]]:
        dialect = self.db.dialect
        clauses: list[str] = ["e.tenant = ?"]
        params: list[Any] = [tenant]
        if query.ids is not None:
            # Through the (tenant, id) index, as a list of eids: as `e.id IN (...)` next to
            # `e.tenant = ?`, SQLite would walk the tenant in eid order (entities_tenant) to
            # spare the sort of a few rows.
            clauses.append("e.eid IN (SELECT eid FROM entities WHERE tenant = ? AND id IN "
                           f"({', '.join('?' for _ in query.ids)}))")
            params.extend((tenant, *query.ids))
        if query.id_pattern is not None:
            clauses.append("e.id REGEXP ?" if dialect == "sqlite" else "e.id ~ ?")
            params.append(query.id_pattern)
        compiled: list[tuple[str, list[object]]] = []
        if query.types is not None and types_in_sql:
            compiled.append(compile_type(query.types, dialect, "e", tenant=tenant))
        if query.q is not None:
            compiled.append(compile_q(query.q, dialect, "e", tenant=tenant))
        if query.scope is not None:
            compiled.append(compile_scope(query.scope, dialect, "e", tenant=tenant))
        any_attribute = _any_attribute(query.attrs_any)
        if any_attribute is not None:
            compiled.append(compile_q(any_attribute, dialect, "e", tenant=tenant))
        for sql, more in compiled:
            clauses.append(f"({sql})")
            params.extend(more)
        if dialect == "sqlite" and (compiled or query.geo is not None or query.ids is not None):
            # Without statistics SQLite would walk the whole tenant by its (tenant, id) index
            # and probe the filters row by row; `+` keeps that index out, so the selective
            # index subqueries drive the lookup by rowid (PostgreSQL plans this from its stats).
            clauses[0] = "+e.tenant = ?"
        if query.geo is not None:
            box = query.geo.bbox()
            if box is not None:
                if dialect == "sqlite":  # the R*Tree finds the boxes (see schema._geo_ddl)
                    clauses.append(
                        "e.eid IN (SELECT g.eid FROM geo_rtree r JOIN geo_index g "
                        "ON g.gid = r.gid WHERE r.min_x <= ? AND r.max_x >= ? "
                        "AND r.min_y <= ? AND r.max_y >= ? AND g.tenant = ? AND g.path = ?)")
                    params.extend([box[2], box[0], box[3], box[1]])
                else:  # the GiST index on the box
                    clauses.append(
                        f"e.eid IN (SELECT eid FROM geo_index WHERE {PG_BOX} && "
                        "box(point(?, ?), point(?, ?)) AND tenant = ? AND path = ?)")
                    params.extend(box)
                params.extend([tenant, query.geo_property])
        return " AND ".join(clauses), params

    def query(self, tenant: str, query: EntityQuery, *,
              deadline: float | None = None) -> QueryResult:
        recheck = query.q is not None and needs_recheck(query.q)
        with self.db.transaction(write=False) as conn, within(self.db, conn, deadline):
            source = self._source(conn, tenant, query)
            where, params, order = source.where, source.params, source.order
            types_in_python = source.types_in_python
            in_python = types_in_python or recheck

            def keep(doc: Entity) -> bool:
                """The tests SQL left to memory: the type (see _types_in_python) and a q on
                unindexed system timestamps (needs_recheck)."""
                return (not types_in_python or type_matches(query.types, doc)) and (
                    not recheck or matches(query.q, doc))

            if query.geo is None and not in_python:
                count = None
                if query.count:
                    count = conn.execute(
                        f"SELECT count(*) FROM {source.counted} WHERE {where}",
                        params,
                    ).fetchone()[0]
                rows = conn.execute(
                    f"SELECT e.doc FROM {source.rows} WHERE {where} ORDER BY {order} "
                    "LIMIT ? OFFSET ?",
                    [*params, query.limit, query.offset],
                ).fetchall()
                return QueryResult([orjson.loads(r[0]) for r in rows], count)
            cursor = conn.execute(
                f"SELECT e.doc FROM {source.rows} WHERE {where} ORDER BY {order}", params)
            if query.geo is None and not query.count:
                # Stream the candidates and stop at the page's end: memory stays bounded.
                wanted = query.offset + query.limit
                page: list[Entity] = []
                while len(page) < wanted and (row := cursor.fetchone()) is not None:
                    doc = orjson.loads(row[0])
                    if keep(doc):
                        page.append(doc)
                    check_deadline(deadline)
                return QueryResult(page[query.offset :], None)
            rows = cursor.fetchall()
        check_deadline(deadline)  # what follows is in memory, over every candidate
        docs = [orjson.loads(r[0]) for r in rows]
        if in_python:
            docs = [doc for doc in docs if keep(doc)]
        if query.geo is not None:
            docs = [doc for doc, hit in zip(docs, self._geo_matches(docs, query), strict=True)
                    if hit]
        return QueryResult(
            docs[query.offset : query.offset + query.limit],
            len(docs) if query.count else None,
        )

    @staticmethod
    def _geo_matches(entities: list[Entity], query: EntityQuery) -> list[bool]:
        """Exact geo test of the box-filtered candidates, in one vectorised call."""
        owners: list[int] = []
        geometries: list[object] = []
        for at, entity in enumerate(entities):
            for inst in entity["attrs"].get(query.geo_property or "", []):
                if inst["type"] == "GeoProperty":
                    owners.append(at)
                    geometries.append(inst["value"])
        hits = [False] * len(entities)
        for owner, hit in zip(owners, query.geo.matches_many(geometries), strict=True):
            hits[owner] = hits[owner] or hit
        return hits

    def types(self, tenant: str) -> list[TypeInfo]:
        """Entity types with their entity counts and attribute kinds, from the census table."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT type, attr, kind, n FROM type_attrs WHERE tenant = ? AND n > 0 "
                "ORDER BY type, attr",
                (tenant,),
            ).fetchall()
        counts: dict[str, int] = {}
        attrs: dict[str, dict[str, set[str]]] = {}
        for type_, attr, kind, n in rows:
            if attr:
                attrs.setdefault(type_, {}).setdefault(attr, set()).add(kind)
            else:
                counts[type_] = int(n)
        return [
            TypeInfo(type_, count, {a: frozenset(k) for a, k in attrs.get(type_, {}).items()})
            for type_, count in counts.items()
        ]

    def attributes(self, tenant: str) -> list[AttributeInfo]:
        infos = []
        kinds: dict[str, set[str]] = {}
        types: dict[str, set[str]] = {}
        for info in self.types(tenant):
            for attr, attr_kinds in info.attributes.items():
                kinds.setdefault(attr, set()).update(attr_kinds)
                types.setdefault(attr, set()).add(info.type)
        for attr in sorted(kinds):
            count = self.query(
                tenant, EntityQuery(attrs_any=(attr,), limit=0, count=True)
            ).count
            if count:
                infos.append(AttributeInfo(attr, count, frozenset(kinds[attr]),
                                           frozenset(types[attr])))
        return infos

    # -- writes ------------------------------------------------------------------------------

    def modify(self, tenant: str, ids: list[str], mutation: Mutation, now: str) -> list[Change]:
        def work(conn: Connection) -> list[Change]:
            return self._apply(conn, tenant, ids, mutation, now)

        if self._writer is not None:
            changes = self._writer.run(work)
        else:
            with self.db.transaction(write=True) as conn:
                # Row locks cannot cover ids not created yet: lock every id (sorted, so no
                # deadlock) so that a racing create waits and then sees the entity.
                conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(?::bigint[]) AS k",
                             (sorted({_lock_key(tenant, i) for i in ids}),))
                changes = work(conn)
        # Remembered only once committed: a rolled-back write must be written again next time.
        if tenant:
            self._known_tenants.add(tenant)
        return changes

    async def modify_async(self, tenant: str, ids: list[str], mutation: Mutation,
                           now: str) -> list[Change]:
        """`modify` for a coroutine: on SQLite the group committer answers it without a
        worker thread; on PostgreSQL it runs in a worker thread."""
        if self._writer is None:
            return await asyncio.to_thread(self.modify, tenant, ids, mutation, now)
        changes = await self._writer.run_async(
            lambda conn: self._apply(conn, tenant, ids, mutation, now))
        if tenant:
            self._known_tenants.add(tenant)
        return changes

    def _apply(self, conn: Connection, tenant: str, ids: list[str], mutation: Mutation,
               now: str) -> list[Change]:
        """Load, mutate, write, tell the listeners: one write of `modify`, in its savepoint."""
        lock = " FOR UPDATE" if self.db.dialect == "postgres" else ""
        self._ensure_tenant(conn, tenant)
        current: dict[str, Entity | None] = dict.fromkeys(ids)
        docs: dict[str, str] = {}
        eids: dict[str, int] = {}
        for chunk in _chunks(sorted(set(ids)), 500):
            rows = conn.execute(
                f"SELECT eid, id, doc FROM entities WHERE tenant = ? "
                f"AND id IN ({', '.join('?' for _ in chunk)}){lock}",
                [tenant, *chunk],
            ).fetchall()
            for eid, entity_id, doc in rows:
                eids[entity_id] = eid
                docs[entity_id] = doc
                current[entity_id] = orjson.loads(doc)
        # The mutation gets its own copies (parsing again is far cheaper than deepcopy).
        result = mutation({k: orjson.loads(docs[k]) if k in docs else None for k in current})
        changes = self._write(conn, tenant, current, result, eids, now)
        for listener in self.listeners:
            listener(conn, changes)
        return changes

    def _ensure_tenant(self, conn: Connection, tenant: str) -> None:
        if tenant and tenant not in self._known_tenants:
            conn.execute(
                "INSERT INTO tenants (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (tenant,)
            )

    def _new_eids(self, conn: Connection, count: int) -> Iterator[int]:
        if self.db.dialect == "postgres":
            rows = conn.execute(
                "SELECT nextval(pg_get_serial_sequence('entities', 'eid')) "
                "FROM generate_series(1, ?)",
                (count,),
            ).fetchall()
            return iter(int(r[0]) for r in rows)
        # SQLite: one writer at a time holds the write lock, so max+1 cannot be taken twice.
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entities'").fetchone()
        top = row[0] if row else 0
        top = max(top, conn.execute("SELECT coalesce(max(eid), 0) FROM entities").fetchone()[0])
        return iter(range(top + 1, top + count + 1))

    def _write(
        self,
        conn: Connection,
        tenant: str,
        current: dict[str, Entity | None],
        result: Any,
        eids: dict[str, int],
        now: str,
    ) -> list[Change]:
        changes: list[Change] = []
        Row = tuple[Any, ...]
        inserts: list[Row] = []
        updates: list[Row] = []
        deleted_eids: list[int] = []
        moved_eids: list[int] = []  # updated entities whose geo rows change
        revised: dict[int, list[IndexRow]] = {}  # updated entities' new index rows
        narrowed: list[tuple[int, Entity, Entity, list[str]]] = []  # see _narrow_index
        index: list[Row] = []
        geo_rows: list[Row] = []
        history: list[Row] = []
        census: Counter[tuple[str, str, str]] = Counter()
        creates = [i for i, e in result.items() if e is not None and current.get(i) is None]
        fresh = self._new_eids(conn, len(creates)) if creates else iter(())
        recorded = epoch(now)
        touched: Mapping[str, tuple[str, ...]] = (
            result.attrs if isinstance(result, Touched) else {})
        for entity_id, entity in result.items():
            old = current.get(entity_id)
            if entity is None and old is None:
                continue
            if entity is None:
                deleted_eids.append(eids[entity_id])
                history.extend(self._deletions(tenant, old, None, recorded, now))
                assert old is not None
                census.subtract(_census(old))
                changes.append(Change(tenant, entity_id, "delete", tuple(old["attrs"]), None,
                                      old, now))
                continue
            changed = self._history_rows(tenant, old, entity, recorded, history,
                                         touched.get(entity_id))
            if old is not None and not changed and old.get("type") == entity.get("type") and (
                old.get("scope") == entity.get("scope")
            ):
                continue  # nothing but timestamps would change: keep the stored entity
            if old is None:
                eid = next(fresh)
                inserts.append((eid, tenant, entity_id, dumps(entity)))
                index.extend((tenant, eid, *row) for row in index_rows(entity))
                geo_rows.extend(self._geo_rows(tenant, eid, entity))
            else:
                eid = eids[entity_id]
                updates.append((dumps(entity), eid))
                same_frame = old.get("type") == entity.get("type") and (
                    old.get("scope") == entity.get("scope"))
                if same_frame:  # only the changed attributes' index rows can differ
                    narrowed.append((eid, old, entity, changed))
                else:
                    revised[eid] = index_rows(entity)  # diffed against the stored rows below
                if not same_frame or _has_geo(old, changed) or _has_geo(entity, changed):
                    new_geo = list(self._geo_rows(tenant, eid, entity))
                    if new_geo != list(self._geo_rows(tenant, eid, old)):
                        moved_eids.append(eid)
                        geo_rows.extend(new_geo)
                if same_frame and _kinds(old, changed) == _kinds(entity, changed):
                    # Same types, same attribute kinds: the discovery census stays as it is.
                    changes.append(Change(tenant, entity_id, "update", tuple(changed), entity,
                                          old, now))
                    continue
            census.update(_census(entity))
            if old is not None:
                census.subtract(_census(old))
            changes.append(Change(tenant, entity_id, "create" if old is None else "update",
                                  tuple(changed), entity, old, now))
        self._flush(conn, inserts, updates, deleted_eids, result, current, tenant)
        for chunk in _chunks(moved_eids, 500):
            conn.execute(f"DELETE FROM geo_index WHERE eid IN ({', '.join('?' for _ in chunk)})",
                         chunk)
        if revised:
            index.extend(self._index_diff(conn, tenant, revised))
        if narrowed:
            index.extend(self._narrow_index(conn, tenant, narrowed))
        dialect = self.db.dialect
        insert_rows(conn, dialect, _INDEX_INSERT, index)
        insert_rows(conn, dialect, _GEO_INSERT, geo_rows)
        insert_rows(conn, dialect, HISTORY_INSERT, history)
        conn.executemany(
            "INSERT INTO type_attrs (tenant, type, attr, kind, n) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (tenant, type, attr, kind) DO UPDATE SET n = type_attrs.n + excluded.n",
            [(tenant, *key, n) for key, n in sorted(census.items()) if n],
        )
        return changes

    def _index_diff(
        self, conn: Connection, tenant: str, revised: dict[int, list[IndexRow]]
    ) -> list[tuple[Any, ...]]:
        """Delete the stored index rows of updated entities that their new rows lack, and
        return the new rows not stored yet: an update touches only what changed (a new value
        and its observedAt), not every leaf of the entity. Rows are compared as stored, so
        rows of an earlier index format go too."""
        locator = "rowid" if self.db.dialect == "sqlite" else "ctid::text"
        stored: dict[tuple[Any, ...], list[Any]] = {}
        for chunk in _chunks(list(revised), 500):
            for row in conn.execute(
                f"SELECT {locator}, eid, {', '.join(_INDEX_COLUMNS)} FROM attr_index "
                f"WHERE eid IN ({', '.join('?' for _ in chunk)})",
                chunk,
            ).fetchall():
                stored.setdefault(tuple(row[1:]), []).append(row[0])
        added: list[tuple[Any, ...]] = []
        for eid, rows in revised.items():
            for row in rows:
                kept = stored.get((eid, *row))
                if kept:
                    kept.pop()
                else:
                    added.append((tenant, eid, *row))
        stale = [(place,) for places in stored.values() for place in places]
        conn.executemany(
            "DELETE FROM attr_index WHERE rowid = ?" if self.db.dialect == "sqlite"
            else "DELETE FROM attr_index WHERE ctid = ?::tid",
            stale,
        )
        return added

    @staticmethod
    def _narrow_index(
        conn: Connection, tenant: str, narrowed: list[tuple[int, Entity, Entity, list[str]]]
    ) -> list[tuple[Any, ...]]:
        """For updates that kept the entity's types and scopes: rewrite the index rows of
        the changed attributes' paths whose rows differ (a PATCH of one value rewrites its
        value and observedAt rows, not the other attributes' rows), and return the rows to
        insert. Old and new rows are both derived from the documents, so nothing is read;
        a path's rows are deleted by (eid, path), whatever their stored form."""
        stale: list[tuple[int, int]] = []
        added: list[tuple[Any, ...]] = []
        for eid, old, new, names in narrowed:
            before, after = attribute_rows(old, names), attribute_rows(new, names)
            for key in before.keys() | after.keys():
                rows = after.get(key, frozenset())
                if before.get(key) != rows:
                    stale.append((eid, key))
                    added.extend((tenant, eid, *row) for row in rows)
        conn.executemany("DELETE FROM attr_index WHERE eid = ? AND path = ?", stale)
        return added

    def _flush(
        self,
        conn: Connection,
        inserts: list[tuple[Any, ...]],
        updates: list[tuple[Any, ...]],
        stale_eids: list[int],
        result: Any,
        current: dict[str, Entity | None],
        tenant: str,
    ) -> None:
        for chunk in _chunks(stale_eids, 500):
            marks = ", ".join("?" for _ in chunk)
            conn.execute(f"DELETE FROM attr_index WHERE eid IN ({marks})", chunk)
            conn.execute(f"DELETE FROM geo_index WHERE eid IN ({marks})", chunk)
        gone = [i for i, e in result.items() if e is None and current.get(i) is not None]
        for chunk in _chunks(gone, 500):
            conn.execute(
                f"DELETE FROM entities WHERE tenant = ? "
                f"AND id IN ({', '.join('?' for _ in chunk)})",
                [tenant, *chunk],
            )
        insert_rows(conn, self.db.dialect, "INSERT INTO entities (eid, tenant, id, doc)", inserts)
        conn.executemany("UPDATE entities SET doc = ? WHERE eid = ?", updates)

    def _history_rows(
        self, tenant: str, old: Entity | None, new: Entity, recorded: float, out: list[Any],
        only: tuple[str, ...] | None = None,
    ) -> list[str]:
        """Append history rows for instances that differ; return the changed attribute names.
        `only`: the attributes that can differ (`Touched`), the others are not compared."""
        if old is None and only is None:  # a new entity: every instance is a change
            return _creation_rows(tenant, new, recorded, out)
        before, after = _instances_by_key(old, only), _instances_by_key(new, only)
        changed: list[str] = []
        for (iri, dataset_id), inst in after.items():
            previous = before.get((iri, dataset_id))
            if previous is not None and _same_instance(previous, inst):
                continue
            observed = inst.get("observedAt") or inst.get("modifiedAt") or new["modifiedAt"]
            out.append((tenant, new["id"], iri, dataset_id, epoch(observed), recorded,
                        numeric_value(inst), 0, dumps(inst)))
            if iri not in changed:
                changed.append(iri)
        for row in self._deletions(tenant, old, after, recorded, new["modifiedAt"], only):
            out.append(row)
            if row[2] not in changed:
                changed.append(row[2])
        return changed

    @staticmethod
    def _deletions(
        tenant: str, old: Entity | None, after: dict[tuple[str, str], Instance] | None,
        recorded: float, now: str, only: tuple[str, ...] | None = None,
    ) -> Iterable[tuple[Any, ...]]:
        for (iri, dataset_id), inst in _instances_by_key(old, only).items():
            if after is None or (iri, dataset_id) not in after:
                marker = {"type": inst["type"], "deletedAt": now}
                yield (tenant, old["id"], iri, dataset_id, recorded, recorded, None, 1,  # type: ignore[index]
                       dumps(marker))

    @staticmethod
    def _geo_rows(tenant: str, eid: int, entity: Entity) -> Iterable[tuple[Any, ...]]:
        for iri, instances in entity["attrs"].items():
            for inst in instances:
                if inst["type"] == "GeoProperty":
                    yield (tenant, eid, iri, *geojson.geometry_bbox(inst["value"]))


def _creation_rows(tenant: str, new: Entity, recorded: float, out: list[Any]) -> list[str]:
    """`SqlStore._history_rows` of a new entity: one row per instance, nothing to compare."""
    entity_id, modified = new["id"], new["modifiedAt"]
    changed: list[str] = []
    for iri, instances in new["attrs"].items():
        for inst in instances:
            observed = inst.get("observedAt") or inst.get("modifiedAt") or modified
            out.append((tenant, entity_id, iri, inst.get("datasetId", ""), epoch(observed),
                        recorded, numeric_value(inst), 0, dumps(inst)))
        if instances:
            changed.append(iri)
    return changed


def _lock_key(tenant: str, entity_id: str) -> int:
    """A PostgreSQL advisory lock key (signed 64 bits) for one entity id of a tenant."""
    digest = hashlib.blake2b(f"{tenant}\0{entity_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _Source(NamedTuple):
    """A query's entities `e` in SQL (`SqlStore._source`)."""

    rows: str
    """FROM of the entities' rows."""
    counted: str
    """FROM of their count: the index rows alone where each stands for one entity (the
    store keeps the index in step with the entities, tests/store/test_query_index_store.py):
    a million entities of a type counted in 105 ms, 0.9-3.6 s joined to their rows."""
    where: str
    params: list[Any]
    order: str
    """ORDER BY: eid, as the rows come (`t.eid` on a walk: by `e.eid`, SQLite would sort)."""
    types_in_python: bool
    """The type is left to be tested on the candidates (`_types_in_python`)."""


def _types_in_python(query: EntityQuery) -> bool:
    """Whether to test the entity type on the candidates rather than in SQL.

    A type usually covers a large share of a tenant (every TrafficFlowObserved), so as an
    index lookup it lists most entities; when ids, q, a geo-query or `attrs` already narrow
    the candidates, testing each candidate's type in memory is far cheaper (`attrs` that
    do not narrow them are walked, see `SqlStore._source`). Not for a count,
    which tests every candidate: SQL intersects the type's index rows with the others' ten
    times faster than the store parses each document (`type` and `q=intensity>0` over 10,000
    entities: 231 ms in memory, 24 ms in SQL).
    """
    return query.types is not None and not query.count and (
        query.ids is not None or query.q is not None or query.geo is not None
        or query.attrs_any is not None
    )


def _has_geo(entity: Entity, names: list[str]) -> bool:
    attrs = entity["attrs"]
    return any(inst.get("type") == "GeoProperty" for name in names
               for inst in attrs.get(name, ()))


def _kinds(entity: Entity, names: list[str]) -> set[tuple[str, str]]:
    """The (attribute, kind) pairs of some attributes: what they add to the census."""
    attrs = entity["attrs"]
    return {(name, inst["type"]) for name in names for inst in attrs.get(name, ())}


def _census(entity: Entity) -> frozenset[tuple[str, str, str]]:
    """What an entity adds to discovery: (type, "", "") per type and (type, attr, kind)."""
    kinds = frozenset((iri, inst["type"]) for iri, insts in entity["attrs"].items()
                      for inst in insts)
    return _census_of(tuple(entity["type"]), kinds)


@lru_cache(maxsize=1024)
def _census_of(types: tuple[str, ...], kinds: frozenset[tuple[str, str]]
               ) -> frozenset[tuple[str, str, str]]:
    """Entities of a batch mostly share their shape: the census rows are built once each."""
    return frozenset({(type_, "", "") for type_ in types} | {
        (type_, iri, kind) for type_ in types for iri, kind in kinds})


def _any_attribute(attrs: tuple[str, ...] | None) -> QExpr | None:
    """The q expression "has any of these attributes" (the `attrs` filter of a query)."""
    if not attrs:
        return None
    exists: tuple[QExpr, ...] = tuple(Exists(Path(a)) for a in attrs)
    return exists[0] if len(exists) == 1 else Or(exists)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
