"""Entity history for the temporal API: reads of `attr_history` (instances, aggregation in SQL)
and the temporal writes (add instances, delete history, modify or delete one instance).

Rows are read per attribute through the index (tenant, entity_id, attr, observed_at). The
timeproperty picks the time column: observedAt -> observed_at, modifiedAt/createdAt/deletedAt ->
recorded_at (createdAt keeps only the rows that created an instance, checked in Python).
Aggregation buckets numeric values in SQL (floor((t - origin) / period)); calendar periods
(months, years) run one indexed query per period; attributes with non-numeric values are
aggregated in Python over their rows. An instanceId names its history row (`hid`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Collection, Mapping
from typing import Any

import orjson

from cityhub.ngsild import operations as ops
from cityhub.ngsild import temporal as tl
from cityhub.ngsild.errors import BadRequestData, ResourceNotFound
from cityhub.ngsild.model import VALUE_MEMBER, Entity, Instance
from cityhub.ngsild.payload import format_datetime
from cityhub.store.database import Connection, check_deadline, within
from cityhub.store.port import Change, Mutation
from cityhub.store.service import Clock, utc_now
from cityhub.store.sql import HISTORY_INSERT, SqlStore, dumps, epoch, insert_rows, numeric_value

DEFAULT_INSTANCE_LIMIT = 1000
MAX_CALENDAR_PERIODS = 1000
Action = Callable[[Connection], None]
# time column and deletion filter per timeproperty
_TIME = {
    "observedAt": ("observed_at", 0),
    "modifiedAt": ("recorded_at", 0),
    "createdAt": ("recorded_at", 0),
    "deletedAt": ("recorded_at", 1),
}
# SQL over the numeric column per method (stddev: sums shifted by a value near the mean)
_SQL_AGGREGATES = {
    "totalCount": (),
    "distinctCount": ("count(DISTINCT num)",),
    "sum": ("sum(num)",),
    "avg": ("sum(num)",),
    "min": ("min(num)",),
    "max": ("max(num)",),
    "sumsq": ("sum(num * num)",),
    "stddev": ("sum(num - ?)", "sum((num - ?) * (num - ?))"),
}
_ATTRS_OF_ENTITY = """
    WITH RECURSIVE a(attr) AS (
        SELECT min(attr) FROM attr_history WHERE tenant = ? AND entity_id = ?
        UNION ALL
        SELECT (SELECT min(h.attr) FROM attr_history h
                WHERE h.tenant = ? AND h.entity_id = ? AND h.attr > a.attr)
        FROM a WHERE a.attr IS NOT NULL)
    SELECT attr FROM a WHERE attr IS NOT NULL"""


def _comparable(instance: Instance) -> bytes:
    kept = {k: v for k, v in instance.items() if k not in ("createdAt", "modifiedAt")}
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)


class TemporalStore:
    """History reads and temporal writes on a `SqlStore` (see module docstring)."""

    def __init__(self, store: SqlStore, clock: Clock = utc_now,
                 instance_limit: int = DEFAULT_INSTANCE_LIMIT) -> None:
        self.store = store
        self.db = store.db
        self.clock = clock
        self.instance_limit = instance_limit
        # Extra SQL a temporal write runs inside the entity write's transaction (see _modify).
        self._pending: contextvars.ContextVar[list[Action] | None] = contextvars.ContextVar(
            f"temporal_pending_{id(self)}", default=None)
        store.listeners.append(self._run_pending)

    # -- reads ---------------------------------------------------------------------------------

    def attributes(self, tenant: str, entity_id: str, *,
                   deadline: float | None = None) -> list[str]:
        """Every attribute the entity has history for (a skip scan over the index). With a
        `deadline`, the read stops once it has passed (`OverBudget`), as `Store.query`."""
        with self.db.transaction(write=False) as conn, within(self.db, conn, deadline):
            return self._attributes(conn, tenant, entity_id)

    @staticmethod
    def _attributes(conn: Connection, tenant: str, entity_id: str) -> list[str]:
        return [r[0] for r in conn.execute(_ATTRS_OF_ENTITY, (tenant, entity_id) * 2).fetchall()]

    def read(self, tenant: str, entity: Entity, query: tl.TemporalQuery,
             attrs: Collection[str] | None = None, *,
             deadline: float | None = None) -> dict[str, tl.Series]:
        """The entity's history per attribute (all attributes with history, or `attrs`);
        `deadline` as in `attributes`."""
        with self.db.transaction(write=False) as conn, within(self.db, conn, deadline):
            names = (sorted(attrs) if attrs is not None
                     else self._attributes(conn, tenant, entity["id"]))
            if query.representation == "aggregatedValues":
                return self._aggregated(conn, tenant, entity, names, query, deadline)
            out = {}
            for iri in names:
                check_deadline(deadline)
                series = self._rows(conn, tenant, entity["id"], iri, query)
                series.kind = _kind(entity, iri, series.items) or "Property"
                out[iri] = series
            return out

    def _where(self, tenant: str, entity_id: str, iri: str, query: tl.TemporalQuery,
               lower: float | None = None) -> tuple[str, str, list[Any]]:
        column, deleted = _TIME[query.timeproperty]
        clauses = ["tenant = ?", "entity_id = ?", "attr = ?", f"deleted = {deleted}"]
        params: list[Any] = [tenant, entity_id, iri]
        low, high = query.bounds()
        low = lower if lower is not None else low
        if low is not None:
            clauses.append(f"{column} >= ?")
            params.append(low)
        if high is not None:
            clauses.append(f"{column} < ?")
            params.append(high)
        return column, " AND ".join(clauses), params

    def _select(self, conn: Connection, tenant: str, entity_id: str, iri: str,
                query: tl.TemporalQuery, *, descending: bool = False, limit: int | None = None,
                lower: float | None = None) -> list[tl.HistoryRow]:
        column, where, params = self._where(tenant, entity_id, iri, query, lower)
        order = "DESC" if descending else "ASC"
        sql = (f"SELECT hid, dataset_id, {column}, instance FROM attr_history "
               f"WHERE {where} ORDER BY {column} {order}, hid {order}")
        if limit is not None and query.timeproperty != "createdAt":
            sql += f" LIMIT {int(limit)}"
        rows = [tl.HistoryRow(hid, ds, t, orjson.loads(inst), query.timeproperty == "deletedAt")
                for hid, ds, t, inst in conn.execute(sql, params).fetchall()]
        if query.timeproperty == "createdAt":
            rows = [_as_created(r) for r in rows if r.instance.get("createdAt") == (
                r.instance.get("modifiedAt"))]
            rows = rows if limit is None else rows[:limit]
        return rows

    def _rows(self, conn: Connection, tenant: str, entity_id: str, iri: str,
              query: tl.TemporalQuery) -> tl.Series:
        """Oldest first; lastN keeps the newest N; past the instance limit the series is cut."""
        limit, last_n = self.instance_limit, query.last_n
        want = min(last_n, limit) if last_n is not None else limit
        cut_possible = last_n is None or last_n > limit
        rows = self._select(conn, tenant, entity_id, iri, query, descending=last_n is not None,
                            limit=want + 1 if cut_possible else want)
        truncated = cut_possible and len(rows) > want
        rows = rows[:want]
        if last_n is not None:
            rows.reverse()
        return tl.Series(rows, truncated)

    # -- aggregation ---------------------------------------------------------------------------

    def _aggregated(self, conn: Connection, tenant: str, entity: Entity, names: list[str],
                    query: tl.TemporalQuery, deadline: float | None) -> dict[str, tl.Series]:
        lower, upper = query.bounds()
        period = query.aggr_period
        origin, end = lower, upper
        if lower is None or (upper is None and (period is None or period.months)):
            spans = [s for s in (self._span(conn, tenant, entity["id"], i, query)
                                 for i in names) if s]
            if not spans:
                return {}
            origin = lower if lower is not None else min(s[0] for s in spans)
            end = upper if upper is not None else max(s[1] for s in spans)
        assert origin is not None
        buckets = tl.Buckets.build(origin, end if end is not None else origin, period,
                                   MAX_CALENDAR_PERIODS)
        out = {}
        for iri in names:
            check_deadline(deadline)
            items = self._numeric_buckets(conn, tenant, entity["id"], iri, query, buckets,
                                          _shift(entity, iri))
            if items is None:  # values SQL cannot aggregate: do it here, over the rows
                rows = self._select(conn, tenant, entity["id"], iri, query, lower=origin)
                items = tl.aggregate_rows(rows, buckets, query.aggr_methods)
            series = self._limit_buckets(items, query)
            series.kind = _kind(entity, iri, []) or self._latest_kind(conn, tenant, entity, iri)
            out[iri] = series
        return out

    def _span(self, conn: Connection, tenant: str, entity_id: str, iri: str,
              query: tl.TemporalQuery) -> tuple[float, float] | None:
        column, where, params = self._where(tenant, entity_id, iri, query)
        row = conn.execute(
            f"SELECT (SELECT min({column}) FROM attr_history WHERE {where}), "
            f"(SELECT max({column}) FROM attr_history WHERE {where})",
            params * 2,
        ).fetchone()
        return None if row is None or row[0] is None else (float(row[0]), float(row[1]))

    def _numeric_buckets(self, conn: Connection, tenant: str, entity_id: str, iri: str,
                         query: tl.TemporalQuery, buckets: tl.Buckets,
                         shift: float) -> list[tl.Bucket] | None:
        """SQL aggregation of numeric values (only the asked methods: a DISTINCT keeps
        PostgreSQL from hashing); None when some value in range is not a number. `shift`, a
        value near the mean, keeps the standard deviation's sums from cancelling."""
        if query.timeproperty == "createdAt":
            return None
        column, where, params = self._where(tenant, entity_id, iri, query, buckets.origin)
        methods = query.aggr_methods
        exprs = ", ".join(["count(*)", "count(num)",
                           *(e for m in methods for e in _SQL_AGGREGATES[m])])
        shifts = [shift, shift, shift] if "stddev" in methods else []
        if buckets.edges:
            found = []
            for k in range(len(buckets.edges) - 1):
                found.extend(conn.execute(
                    f"SELECT dataset_id, {k}, {exprs} FROM attr_history "
                    f"WHERE {where} AND {column} >= ? AND {column} < ? GROUP BY dataset_id",
                    [*shifts, *params, buckets.edges[k], buckets.edges[k + 1]],
                ).fetchall())
        else:
            if buckets.period is None:
                index, index_params = "0", []
            elif self.db.dialect == "postgres":
                index, index_params = f"floor(({column} - ?) / ?)::bigint", [
                    buckets.origin, buckets.period.seconds]
            else:  # t >= origin, so truncation is floor
                index, index_params = f"CAST(({column} - ?) / ? AS INTEGER)", [
                    buckets.origin, buckets.period.seconds]
            # never more periods than an answer may hold (the newest ones for lastN)
            last_n, cap = query.last_n, self.instance_limit + 1
            order, cap = ("DESC", min(last_n, cap)) if last_n is not None else ("ASC", cap)
            found = conn.execute(
                f"SELECT dataset_id, {index} AS b, {exprs} FROM attr_history "
                f"WHERE {where} GROUP BY dataset_id, b ORDER BY b {order}, dataset_id "
                f"LIMIT {int(cap)}",
                [*index_params, *shifts, *params],
            ).fetchall()
        if any(r[2] != r[3] for r in found):
            return None
        items = []
        for dataset_id, k, total, n, *sums in found:
            start, end = buckets.span(int(k))
            items.append(tl.Bucket(dataset_id, start, end, _decode(methods, total, n, sums)))
        return items

    def _limit_buckets(self, items: list[tl.Bucket], query: tl.TemporalQuery) -> tl.Series:
        ordered = sorted(items, key=lambda b: (b.start, b.dataset_id))
        if query.last_n is not None:
            ordered = ordered[-query.last_n:]
        truncated = len(ordered) > self.instance_limit
        if truncated:
            ordered = ordered[-self.instance_limit:] if query.last_n else (
                ordered[: self.instance_limit])
        return tl.Series(ordered, truncated)

    def _latest_kind(self, conn: Connection, tenant: str, entity: Entity, iri: str) -> str:
        row = conn.execute(
            "SELECT instance FROM attr_history WHERE tenant = ? AND entity_id = ? AND attr = ? "
            "ORDER BY observed_at DESC LIMIT 1",
            (tenant, entity["id"], iri),
        ).fetchone()
        kind = orjson.loads(row[0]).get("type") if row else None
        return kind if isinstance(kind, str) else "Property"

    # -- writes --------------------------------------------------------------------------------

    def _now(self) -> str:
        return format_datetime(self.clock())

    def _run_pending(self, conn: Connection, _changes: list[Change]) -> None:
        for action in self._pending.get() or []:
            action(conn)

    def _modify(self, tenant: str, entity_ids: list[str], mutation: Mutation, now: str,
                action: Action) -> list[Change]:
        """Write the entity through the store and run `action` in the same transaction (the
        store calls its change listeners inside it; this store is one of them)."""
        token = self._pending.set([action])
        try:
            return self.store.modify(tenant, entity_ids, mutation, now)
        finally:
            self._pending.reset(token)

    def upsert(self, tenant: str, temporal: Entity, *, must_exist: bool = False) -> bool:
        """Add every instance of a temporal payload; the newest per attribute instance becomes
        the entity's current value unless the entity holds a newer one. True when created."""
        return temporal["id"] in self.upsert_many(tenant, [temporal], must_exist=must_exist)

    def upsert_many(self, tenant: str, temporals: list[Entity], *, must_exist: bool = False,
                    known_new: bool = False) -> set[str]:
        """`upsert` of several entities in one transaction (payloads with one id are merged);
        the ids created. `known_new`: the caller guarantees that no instance is held yet (device
        ingestion checks message ids in the same transaction), so history rows are inserted
        without first reading the held ones."""
        merged: dict[str, Entity] = {}
        for temporal in temporals:
            held = merged.get(temporal["id"])
            if held is None:
                merged[temporal["id"]] = {**temporal, "attrs": {
                    k: list(v) for k, v in temporal["attrs"].items()}}
                continue
            if "type" in temporal:
                held["type"] = sorted(set(held.get("type", [])) | set(temporal["type"]))
            for iri, instances in temporal["attrs"].items():
                held["attrs"].setdefault(iri, []).extend(instances)
        now = self._now()
        created: set[str] = set()
        older: list[tuple[str, str, Instance]] = []

        def mutation(current: Mapping[str, Entity | None]) -> dict[str, Entity | None]:
            created.clear()
            older.clear()
            result: dict[str, Entity | None] = {}
            for entity_id, temporal in merged.items():
                entity, rest = _merge_temporal(current[entity_id], temporal, now, must_exist)
                if current[entity_id] is None:
                    created.add(entity_id)
                result[entity_id] = entity
                older.extend((entity_id, iri, {**inst, "createdAt": now, "modifiedAt": now})
                             for iri, inst in rest)
            return result

        self._modify(tenant, list(merged), mutation, now,
                     lambda conn: self._insert(conn, tenant, older, now, known_new))
        return created

    def _insert(self, conn: Connection, tenant: str, instances: list[tuple[str, str, Instance]],
                now: str, known_new: bool = False) -> None:
        """History rows for (entity id, attribute, instance) that did not become current,
        skipping any already held unless `known_new` (so a retried request adds nothing
        twice)."""
        groups: dict[tuple[str, str, str], list[tuple[float, Instance]]] = {}
        for entity_id, iri, inst in instances:
            moment = epoch(tl.instance_moment(inst, now))
            groups.setdefault((entity_id, iri, inst.get("datasetId", "")), []).append(
                (moment, inst))
        rows: list[tuple[Any, ...]] = []
        recorded = epoch(now)
        for (entity_id, iri, ds), items in groups.items():
            if known_new:
                rows.extend((tenant, entity_id, iri, ds, moment, recorded, numeric_value(inst),
                             0, dumps(inst)) for moment, inst in items)
                continue
            moments = [m for m, _ in items]
            held = {(float(t), _comparable(orjson.loads(i))) for t, i in conn.execute(
                "SELECT observed_at, instance FROM attr_history WHERE tenant = ? AND "
                "entity_id = ? AND attr = ? AND dataset_id = ? AND deleted = 0 AND "
                "observed_at >= ? AND observed_at <= ?",
                (tenant, entity_id, iri, ds, min(moments), max(moments))).fetchall()}
            for moment, inst in items:
                if (moment, _comparable(inst)) not in held:
                    held.add((moment, _comparable(inst)))
                    rows.append((tenant, entity_id, iri, ds, moment, recorded,
                                 numeric_value(inst), 0, dumps(inst)))
        insert_rows(conn, self.db.dialect, HISTORY_INSERT, rows)

    def delete_entity(self, tenant: str, entity_id: str) -> None:
        """The entity (if it still exists) and all its history."""
        def forget(conn: Connection) -> None:
            conn.execute("DELETE FROM attr_history WHERE tenant = ? AND entity_id = ?",
                         (tenant, entity_id))

        if self.store.get(tenant, entity_id) is not None:
            self._modify(tenant, [entity_id], lambda _current: {entity_id: None}, self._now(),
                         forget)
            return
        if not self.attributes(tenant, entity_id):
            raise ResourceNotFound(f"entity {entity_id} does not exist", instance=entity_id)
        with self.db.transaction(write=True) as conn:
            forget(conn)

    def delete_attribute(self, tenant: str, entity_id: str, iri: str,
                         dataset_id: str | None, delete_all: bool) -> None:
        """An attribute (one datasetId, or all with delete_all) and its history."""
        ds_clause = "" if delete_all else " AND dataset_id = ?"
        params = (tenant, entity_id, iri) + (() if delete_all else (dataset_id or "",))
        now, found = self._now(), False

        def mutation(current: Mapping[str, Entity | None]) -> dict[str, Entity | None]:
            nonlocal found
            entity = current[entity_id]
            if entity is None:
                raise ResourceNotFound(f"entity {entity_id} does not exist", instance=entity_id)
            held = entity["attrs"].get(iri, [])
            if any(delete_all or i.get("datasetId") == dataset_id for i in held):
                ops.delete_attr(entity, iri, now, dataset_id=dataset_id,
                                delete_all=delete_all)
                found = True
            return {entity_id: entity}

        def forget(conn: Connection) -> None:
            where = f"tenant = ? AND entity_id = ? AND attr = ?{ds_clause}"
            held = conn.execute(f"SELECT count(*) FROM attr_history WHERE {where}",
                                params).fetchone()[0]
            if not found and not held:
                raise ResourceNotFound(f"entity {entity_id} has no attribute {iri} "
                                       "(nor history of it)")
            conn.execute(f"DELETE FROM attr_history WHERE {where}", params)

        self._modify(tenant, [entity_id], mutation, now, forget)

    def _instance_row(self, conn: Connection, tenant: str, entity_id: str, iri: str,
                      instance_id: str) -> tuple[int, float, Instance, str]:
        hid = tl.instance_hid(instance_id)
        row = conn.execute(
            "SELECT observed_at, instance, dataset_id FROM attr_history WHERE hid = ? AND "
            "tenant = ? AND entity_id = ? AND attr = ? AND deleted = 0",
            (hid, tenant, entity_id, iri),
        ).fetchone()
        if row is None:
            raise ResourceNotFound(f"attribute {iri} of {entity_id} has no instance "
                                   f"{instance_id}", instance=instance_id)
        return hid, float(row[0]), orjson.loads(row[1]), row[2]

    def modify_instance(self, tenant: str, entity_id: str, iri: str, instance_id: str,
                        fragment: Instance) -> None:
        """Merge a fragment into one recorded instance (its datasetId cannot change)."""
        now = self._now()
        with self.db.transaction(write=True) as conn:
            hid, observed, old, ds = self._instance_row(conn, tenant, entity_id, iri, instance_id)
            if fragment.get("datasetId", ds or None) != (ds or None):
                raise BadRequestData("an instance's datasetId cannot be changed")
            retyped = fragment.get("type", old["type"]) != old["type"]
            merged = {k: v for k, v in old.items()
                      if not (retyped and k == VALUE_MEMBER.get(old["type"]))}
            merged.update({k: v for k, v in fragment.items() if k != "sub"})
            if "sub" in fragment:
                merged["sub"] = {**old.get("sub", {}), **fragment["sub"]}
            merged["modifiedAt"] = now
            moment = epoch(merged["observedAt"]) if "observedAt" in fragment else observed
            conn.execute(
                "UPDATE attr_history SET instance = ?, num = ?, observed_at = ?, recorded_at = ? "
                "WHERE hid = ?",
                (dumps(merged), numeric_value(merged), moment, epoch(now), hid),
            )

    def delete_instance(self, tenant: str, entity_id: str, iri: str, instance_id: str) -> None:
        with self.db.transaction(write=True) as conn:
            hid = self._instance_row(conn, tenant, entity_id, iri, instance_id)[0]
            conn.execute("DELETE FROM attr_history WHERE hid = ?", (hid,))


def _decode(methods: tuple[str, ...], total: int, n: int, sums: list[Any]) -> dict[str, Any]:
    """One SQL aggregate row (laid out as in _SQL_AGGREGATES) -> method -> value."""
    column = iter(sums)
    out: dict[str, Any] = {}
    for method in methods:
        if method == "totalCount":
            out[method] = int(total)
        elif method == "distinctCount":
            out[method] = int(next(column))
        elif method == "stddev":
            out[method] = tl.stddev(int(n), float(next(column)), float(next(column)))
        elif method == "avg":
            out[method] = float(next(column)) / n
        else:
            out[method] = float(next(column))
    return out


def _shift(entity: Entity, iri: str) -> float:
    """The attribute's current number: usually near the mean of its recent history."""
    numbers = [n for n in (numeric_value(i) for i in entity["attrs"].get(iri, [])) if n is not None]
    return numbers[0] if numbers else 0.0


def _merge_temporal(entity: Entity | None, temporal: Entity, now: str, must_exist: bool
                    ) -> tuple[Entity, list[tuple[str, Instance]]]:
    """The entity after a temporal upsert, and the instances that go to history only (older
    than the current value of their attribute)."""
    entity_id = temporal["id"]
    latest, rest = _split_latest(temporal["attrs"], now)
    if entity is None:
        if must_exist:
            raise ResourceNotFound(f"entity {entity_id} does not exist", instance=entity_id)
        if "type" not in temporal:
            raise BadRequestData("a new temporal entity needs a type")
        attrs: dict[str, list[Instance]] = {}
        for (iri, _ds), inst in latest.items():
            attrs.setdefault(iri, []).append(inst)
        return ops.new_entity({**temporal, "attrs": attrs}, now), rest
    if "type" in temporal:
        entity["type"] = sorted(set(entity["type"]) | set(temporal["type"]))
    for (iri, ds), inst in latest.items():
        held = next((i for i in entity["attrs"].get(iri, []) if i.get("datasetId", "") == ds),
                    None)
        if held is not None and tl.instance_moment(inst, now) < tl.instance_moment(
                held, held.get("modifiedAt", now)):
            rest.append((iri, inst))
        else:
            ops.append_attrs(entity, {iri: [inst]}, now)
    return entity, rest


def _split_latest(attrs: Mapping[str, list[Instance]], now: str) -> tuple[
        dict[tuple[str, str], Instance], list[tuple[str, Instance]]]:
    """Per (attribute, datasetId) the newest instance, and all the others."""
    latest: dict[tuple[str, str], Instance] = {}
    rest: list[tuple[str, Instance]] = []
    for iri, instances in attrs.items():
        for inst in sorted(instances, key=lambda i: tl.instance_moment(i, now)):
            key = (iri, inst.get("datasetId", ""))
            if key in latest:
                rest.append((iri, latest[key]))
            latest[key] = inst
    return latest, rest


def _as_created(row: tl.HistoryRow) -> tl.HistoryRow:
    return tl.HistoryRow(row.hid, row.dataset_id, epoch(row.instance["createdAt"]),
                         row.instance, row.deleted)


def _kind(entity: Entity, iri: str, rows: list[tl.HistoryRow]) -> str:
    """The attribute's type now (or in its latest recorded instance); '' when unknown."""
    held = entity["attrs"].get(iri)
    if held:
        return str(held[0]["type"])
    kinds = [r.instance.get("type") for r in rows]
    return str(kinds[-1]) if kinds and kinds[-1] else ""
