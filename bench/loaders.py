"""Fast bulk loading of the benchmark data straight into the store's tables.

Building a million entities through `SqlStore.modify` spends most of its time in the general
write path (parsing, diffing, `index_rows` walking every entity); all benchmark entities have
one shape, so the bulk path builds each entity's document, index rows and geo box from a
template and writes them with executemany (SQLite) or COPY (PostgreSQL), secondary indexes
dropped during the load and rebuilt after it. `check_bulk_rows` proves on a sample that the
template gives exactly what the store's own code would write, so a change of the index
format fails loudly instead of skewing the figures.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from rich.progress import Progress

from cityhub.ngsild import geojson
from cityhub.ngsild import operations as ops
from cityhub.ngsild.payload import format_datetime, parse_entity
from cityhub.ngsild.query import index_rows
from cityhub.store.schema import schema
from cityhub.store.sql import SqlStore
from harness import StoreTarget
from workload import (
    ENTITY_TYPE,
    City,
    Reading,
    core_terms,
    entity_id,
    payload,
    reading,
    segment_id,
)

Row = tuple[Any, ...]
HISTORY_ATTRS = ("intensity", "occupancy")
HISTORY_STEP_S = 300  # one observation per attribute every 5 minutes
HISTORY_START = datetime(2026, 10, 1, tzinfo=UTC)
_SENTINELS = {"intensity": 987654321.0, "occupancy": 0.123456789, "speed": 76.54321,
              "lon": 12.3456789, "lat": 45.6789123}
_SEGMENT_SENTINEL = "urn:ngsi-ld:RoadSegment:sentinel"
_INDEX_NAME = re.compile(r"CREATE INDEX IF NOT EXISTS (\w+)")


def iri(term: str) -> str:
    return core_terms().expand_term(term)


class EntityRows:
    """Document, index rows and geo row of benchmark entity i, built from a template."""

    def __init__(self, city: City, now: str, observed_at: str) -> None:
        self.city, self.now, self.observed_at = city, now, observed_at
        self.type_iri = core_terms().expand_term(ENTITY_TYPE)
        self.names = {term: iri(term) for term in (
            "intensity", "occupancy", "averageVehicleSpeed", "refRoadSegment", "location")}
        template = self._entity("sentinel", _SENTINELS["intensity"], _SENTINELS["occupancy"],
                                _SENTINELS["speed"], _SEGMENT_SENTINEL,
                                _SENTINELS["lon"], _SENTINELS["lat"])
        slots: dict[float | None, str] = {v: k for k, v in _SENTINELS.items()}
        self.template: list[tuple[Any, str, Any, Any, bool, bool]] = []
        for path, kind, num, txt in index_rows(template):
            is_segment = txt == _SEGMENT_SENTINEL
            self.template.append((path, kind, slots.get(num, num),
                                  "segment" if is_segment else txt, num in slots, is_segment))
        self.path = self.names["location"]

    def _entity(self, eid: str, intensity: float, occupancy: float, speed: float, segment: str,
                lon: float, lat: float) -> dict[str, Any]:
        now, observed, names = self.now, self.observed_at, self.names

        def prop(value: float, unit: str) -> list[dict[str, Any]]:
            return [{"type": "Property", "value": value, "observedAt": observed, "unitCode": unit,
                     "createdAt": now, "modifiedAt": now}]

        return {
            "id": eid,
            "type": [self.type_iri],
            "attrs": {
                names["intensity"]: prop(intensity, "E50"),
                names["occupancy"]: prop(occupancy, "P1"),
                names["averageVehicleSpeed"]: prop(speed, "KMH"),
                names["refRoadSegment"]: [{"type": "Relationship", "object": segment,
                                           "createdAt": now, "modifiedAt": now}],
                names["location"]: [{"type": "GeoProperty",
                                     "value": {"type": "Point", "coordinates": [lon, lat]},
                                     "createdAt": now, "modifiedAt": now}],
            },
            "createdAt": now,
            "modifiedAt": now,
        }

    def entity(self, i: int, r: Reading) -> dict[str, Any]:
        return self._entity(entity_id(i), int(r.intensity), r.occupancy, r.speed, segment_id(i),
                            r.lon, r.lat)

    def rows(self, i: int, eid: int, tenant: str = "") -> tuple[Row, list[Row], Row]:
        """(entities row, attr_index rows, geo_index row) of entity i stored under `eid`."""
        r = reading(i, self.city)
        values = {"intensity": r.intensity, "occupancy": r.occupancy, "speed": r.speed,
                  "lon": r.lon, "lat": r.lat, "segment": segment_id(i)}
        index = [(tenant, eid, path, kind, values[num] if num_slot else num,
                  values[txt] if txt_slot else txt)
                 for path, kind, num, txt, num_slot, txt_slot in self.template]
        doc = orjson.dumps(self.entity(i, r)).decode()
        return ((eid, tenant, entity_id(i), doc), index,
                (tenant, eid, self.path, r.lon, r.lat, r.lon, r.lat))

    def type_attrs(self, count: int, tenant: str = "") -> list[Row]:
        """The discovery census rows (tenant, type, attr, kind, n) of `count` such entities."""
        kinds = {"refRoadSegment": "Relationship", "location": "GeoProperty"}
        rows: list[Row] = [(tenant, self.type_iri, "", "", count)]
        rows += [(tenant, self.type_iri, name, kinds.get(term, "Property"), count)
                 for term, name in self.names.items()]
        return rows


def check_bulk_rows(rows: EntityRows, sample: Iterable[int]) -> None:
    """Fail unless the template rows equal what the store's own code builds for `sample`."""
    terms = core_terms()
    for i in sample:
        expected = ops.new_entity(parse_entity(payload(i, rows.city, rows.observed_at), terms),
                                  rows.now)
        entity_row, index, geo = rows.rows(i, 1)
        problems = []
        if orjson.loads(entity_row[3]) != expected:
            problems.append("document")
        key = repr
        if sorted(map(key, index)) != sorted(key(("", 1, *r)) for r in index_rows(expected)):
            problems.append("attr_index rows")
        box = geojson.geometry_bbox(expected["attrs"][rows.path][0]["value"])
        if geo != ("", 1, rows.path, *box):
            problems.append("geo_index row")
        if problems:
            raise RuntimeError(f"bulk loader differs from the store on entity {i} "
                               f"({', '.join(problems)}): update bench/loaders.py or use "
                               "--loader modify")


# -- writing rows ------------------------------------------------------------------------------


def secondary_indexes(store: SqlStore, table: str) -> list[str]:
    names = []
    for statement in schema(store.db.dialect):
        match = _INDEX_NAME.search(statement)
        if match and re.search(rf"\bON {table}\b", statement):
            names.append(match.group(1))
    return names


@contextmanager
def indexes_dropped(store: SqlStore, tables: Sequence[str], progress: Progress) -> Iterator[None]:
    """Drop the secondary indexes of `tables` for a bulk load, and rebuild them after it
    (from the store's own DDL, which is idempotent)."""
    with store.db.transaction(write=True) as conn:
        for table in tables:
            for name in secondary_indexes(store, table):
                conn.execute(f"DROP INDEX IF EXISTS {name}")
    yield
    task = progress.add_task("rebuilding indexes", total=None)
    if store.db.dialect == "sqlite":
        with _bulk_sqlite(store) as conn:  # a big sort cache: CREATE INDEX sorts every row
            for statement in schema("sqlite"):
                conn.execute(statement)
    else:
        with store.db.transaction(write=True) as pg:
            for statement in schema("postgres"):
                pg.execute(statement)
            for table in tables:
                pg.execute(f"ANALYZE {table}")
    progress.update(task, total=1, completed=1)


@contextmanager
def _bulk_sqlite(store: SqlStore) -> Iterator[sqlite3.Connection]:
    """A connection of our own to the store's SQLite file for bulk work, in one transaction:
    no foreign-key checks (the rows are consistent by construction), no sync, 1 GB of cache.
    The store sees the rows once committed (WAL)."""
    path = str(store.db._path)  # type: ignore[attr-defined]  # SqliteDatabase's file
    conn = sqlite3.connect(path, isolation_level=None, timeout=60.0)
    try:
        for pragma in ("foreign_keys=OFF", "synchronous=OFF", "cache_size=-1000000",
                       "temp_store=MEMORY"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    finally:
        conn.close()


class RowWriter:
    """Appends rows to tables in big transactions: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, store: SqlStore, target: StoreTarget) -> None:
        self.store, self.target = store, target

    def write(self, tables: dict[str, tuple[Sequence[str], list[Row]]]) -> None:
        if self.store.db.dialect == "sqlite":
            with _bulk_sqlite(self.store) as conn:
                for table, (columns, rows) in tables.items():
                    marks = ", ".join("?" for _ in columns)
                    conn.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                        rows)
            return
        import psycopg

        with psycopg.connect(self.target.url) as pg, pg.cursor() as cursor:
            for table, (columns, rows) in tables.items():
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)


def load_entities(store: SqlStore, target: StoreTarget, count: int, city: City, *,
                  batch: int, progress: Progress) -> EntityRows:
    """Bulk-load `count` benchmark entities into a fresh store (eids 1..count)."""
    now = format_datetime(datetime.now(UTC))
    rows = EntityRows(city, now, format_datetime(HISTORY_START))
    check_bulk_rows(rows, range(min(count, 200)))
    writer = RowWriter(store, target)
    task = progress.add_task(f"loading {count:,} entities", total=count)
    with indexes_dropped(store, ("attr_index", "geo_index"), progress):
        for start in range(0, count, batch):
            entities, index, geo = [], [], []
            for i in range(start, min(count, start + batch)):
                entity_row, index_part, geo_row = rows.rows(i, i + 1)
                entities.append(entity_row)
                index.extend(index_part)
                geo.append(geo_row)
            writer.write({
                "entities": (("eid", "tenant", "id", "doc"), entities),
                "attr_index": (("tenant", "eid", "path", "kind", "num", "txt"), index),
                "geo_index": (("tenant", "eid", "path", "min_x", "min_y", "max_x", "max_y"), geo),
            })
            progress.advance(task, len(entities))
    writer.write({"type_attrs": (("tenant", "type", "attr", "kind", "n"),
                                 rows.type_attrs(count))})
    if store.db.dialect == "postgres":
        with store.db.transaction(write=True) as conn:
            conn.execute("SELECT setval(pg_get_serial_sequence('entities', 'eid'), ?)", (count,))
    return rows


def history_plan(observations: int, entities: int, days: int) -> tuple[int, int]:
    """(entities with history, steps per entity): 2 attributes every 5 min over `days` days,
    spread over as many entities as `observations` fills (at most `entities`)."""
    steps = days * 86_400 // HISTORY_STEP_S
    with_history = max(1, min(entities, observations // (len(HISTORY_ATTRS) * steps)))
    steps = min(steps, max(1, observations // (len(HISTORY_ATTRS) * with_history)))
    return with_history, steps


def history_rows(with_history: int, steps: int, city: City) -> Iterator[list[Row]]:
    """attr_history rows in time order (as sensors report), one list per time step."""
    names = [iri(a) for a in HISTORY_ATTRS]
    units = {"intensity": "E50", "occupancy": "P1"}
    ids = [entity_id(i) for i in range(with_history)]
    base = [reading(i, city) for i in range(with_history)]
    start = HISTORY_START.timestamp()
    for step in range(steps):
        moment = start + step * HISTORY_STEP_S
        text = format_datetime(HISTORY_START + timedelta(seconds=step * HISTORY_STEP_S))
        wave = 0.5 + 0.5 * _daily(step)
        out: list[Row] = []
        for eid, r in zip(ids, base, strict=True):
            values = (round(r.intensity * wave), round(r.occupancy * wave, 4))
            for attr, name, value in zip(HISTORY_ATTRS, names, values, strict=True):
                instance = (f'{{"type":"Property","value":{value},"observedAt":"{text}",'
                            f'"unitCode":"{units[attr]}","createdAt":"{text}",'
                            f'"modifiedAt":"{text}"}}')
                out.append(("", eid, name, "", moment, moment, float(value), 0, instance))
        yield out


def _daily(step: int) -> float:
    """A smooth daily profile in [-1, 1] so that hourly averages differ."""
    return math.sin(2 * math.pi * (step * HISTORY_STEP_S % 86_400) / 86_400)


HISTORY_COLUMNS = ("tenant", "entity_id", "attr", "dataset_id", "observed_at", "recorded_at",
                   "num", "deleted", "instance")


def load_history(store: SqlStore, target: StoreTarget, observations: int, entities: int,
                 city: City, *, days: int, progress: Progress,
                 rows_per_transaction: int = 200_000) -> tuple[int, int]:
    """Bulk-insert about `observations` attr_history rows; returns (entities, steps)."""
    with_history, steps = history_plan(observations, entities, days)
    writer = RowWriter(store, target)
    task = progress.add_task(f"loading {with_history * steps * 2:,} observations",
                             total=with_history * steps * len(HISTORY_ATTRS))
    pending: list[Row] = []
    with indexes_dropped(store, ("attr_history",), progress):
        for rows in history_rows(with_history, steps, city):
            pending.extend(rows)
            if len(pending) >= rows_per_transaction:
                _flush_history(writer, pending, progress, task)
        _flush_history(writer, pending, progress, task)
    return with_history, steps


def _flush_history(writer: RowWriter, pending: list[Row], progress: Progress, task: Any) -> None:
    if pending:
        writer.write({"attr_history": (HISTORY_COLUMNS, pending)})
        progress.advance(task, len(pending))
        pending.clear()
