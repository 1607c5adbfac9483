"""Latency (p50/p99) of selective queries over many entities and of a one-day temporal
aggregation over a large history, in-process (the store call only) and through HTTP, so that
the framework's share is visible:

- `q=intensity>X;occupancy<Y` (about 10 matches), `q=refRoadSegment=="urn:..."` (10 matches)
- `georel=near;maxDistance==200` around a random point, `georel=within` a 300 m square
  (about 10 matches: the city grows with the entity count, see workload.py)
- `/temporal/entities/{id}?timerel=between (one day)&aggrMethods=avg,max&aggrPeriodDuration=PT1H`
  over an `attr_history` of N observations (2 attributes every 5 minutes), beside the same
  aggregation as one bare SQL statement (the database floor).

    .venv/bin/python bench/query.py                  # 1,000,000 entities, 10,000,000 observations
    .venv/bin/python bench/query.py --quick          # 20,000 / 200,000
    .venv/bin/python bench/query.py --workdir /tmp/qb --reuse   # keep and reuse the loaded data

Goals: selective query p50 < 20 ms at 1M entities; one-day aggregation < 50 ms at 10M rows.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import psycopg

from cityhub.api.query_params import build_query
from cityhub.ngsild import temporal as tl
from cityhub.ngsild.payload import format_datetime
from cityhub.store.sql import SqlStore
from cityhub.store.temporal import TemporalStore
from harness import (
    HubServer,
    StoreTarget,
    console,
    fresh_store,
    machine_note,
    percentile,
    print_table,
    progress,
    save_results,
    workdir,
)
from loaders import HISTORY_START, iri, load_entities, load_history
from workload import (
    ENTITIES_PER_SEGMENT,
    ENTITY_TYPE,
    City,
    core_terms,
    entity_id,
    q_thresholds,
    segment_id,
)

NGSI = "/ngsi-ld/v1"
GOALS = {"entity": 20.0, "temporal": 50.0}  # p50 ms


@dataclass
class Sample:
    """One request: its HTTP path, the in-process call that answers the same question, and
    for the temporal kind the same aggregation as one bare SQL statement (the floor)."""

    path: str
    call: Callable[[], int]  # returns the number of results
    floor: Callable[[], int] | None = None


@dataclass
class Kind:
    name: str
    example: str
    goal: str
    samples: list[Sample]
    timings: dict[str, list[float]] = field(default_factory=dict)
    results: dict[str, list[int]] = field(default_factory=dict)
    cut: dict[str, str] = field(default_factory=dict)


def entity_kinds(store: SqlStore, count: int, n: int, rng: random.Random) -> list[Kind]:
    terms, city = core_terms(), City(count)

    def entity_sample(**params: Any) -> Sample:
        query = build_query(terms, type_=ENTITY_TYPE, max_limit=1000, **params)
        http = {"type": ENTITY_TYPE, **params}
        def call() -> int:
            return len(store.query("", query).entities)

        return Sample(f"{NGSI}/entities?{urlencode(http)}", call)

    def q_range() -> Sample:
        x, y = q_thresholds(count, rng)
        return entity_sample(q=f"intensity>{x};occupancy<{y}")

    def q_relationship() -> Sample:
        segment = segment_id(rng.randrange(count // ENTITIES_PER_SEGMENT) * ENTITIES_PER_SEGMENT)
        return entity_sample(q=f'refRoadSegment=="{segment}"')

    def near() -> Sample:
        lon, lat = city.random_point(rng)
        return entity_sample(georel="near;maxDistance==200", geometry="Point",
                             coordinates=f"[{lon},{lat}]")

    def type_page() -> Sample:  # a client paging through every entity of the type
        return entity_sample(limit=20, offset=rng.randrange(0, 1000))

    def within() -> Sample:
        ring = json.dumps([city.square(rng, 300.0)], separators=(",", ":"))
        return entity_sample(georel="within", geometry="Polygon", coordinates=ring)

    goal = f"p50 < {GOALS['entity']:g} ms"
    return [
        Kind("q range", "q=intensity>X;occupancy<Y", goal, [q_range() for _ in range(n)]),
        Kind("q relationship", 'q=refRoadSegment=="urn:..."', goal,
             [q_relationship() for _ in range(n)]),
        Kind("geo near", "georel=near;maxDistance==200", goal, [near() for _ in range(n)]),
        Kind("geo within", "georel=within, 300 m square", goal, [within() for _ in range(n)]),
        Kind("type page", "type only, limit=20, offset < 1000", goal,
             [type_page() for _ in range(n)]),
    ]


def temporal_kind(store: SqlStore, with_history: int, steps: int, n: int,
                  rng: random.Random) -> Kind:
    temporal = TemporalStore(store)
    name = iri("intensity")
    days = max(1, steps * 300 // 86_400)

    def sample() -> Sample:
        i = rng.randrange(with_history)
        start = HISTORY_START + timedelta(days=rng.randrange(days))
        params = {"attrs": "intensity", "timerel": "between",
                  "timeAt": format_datetime(start),
                  "endTimeAt": format_datetime(start + timedelta(days=1)),
                  "aggrMethods": "avg,max", "aggrPeriodDuration": "PT1H",
                  "options": "aggregatedValues"}
        query = tl.parse_temporal_query(
            timerel="between", time_at=params["timeAt"], end_time_at=params["endTimeAt"],
            aggr_methods="avg,max", aggr_period="PT1H", options="aggregatedValues")

        def call() -> int:
            entity = store.get("", entity_id(i))
            assert entity is not None
            temporal.attributes("", entity_id(i))
            series = temporal.read("", entity, query, {name})
            return sum(len(s.items) for s in series.values())

        def floor() -> int:
            low = start.timestamp()
            with store.db.transaction(write=False) as conn:
                return len(conn.execute(
                    "SELECT CAST((observed_at - ?) / 3600 AS INTEGER) AS b, avg(num), max(num) "
                    "FROM attr_history WHERE tenant = ? AND entity_id = ? AND attr = ? "
                    "AND deleted = 0 AND observed_at >= ? AND observed_at < ? GROUP BY b",
                    (low, "", entity_id(i), name, low, low + 86_400)).fetchall())

        path = f"{NGSI}/temporal/entities/{quote(entity_id(i), safe=':')}?{urlencode(params)}"
        return Sample(path, call, floor)

    return Kind("temporal aggregation", "one day, avg,max per PT1H",
                f"p50 < {GOALS['temporal']:g} ms", [sample() for _ in range(n)])


class Watchdog:
    """Stops an in-process call that runs past the budget: SQLite statements are interrupted,
    PostgreSQL ones hit the statement_timeout the in-process store is opened with. A query
    that is quadratic in the entity count would otherwise never return at 1M entities."""

    def __init__(self, store: SqlStore, budget: float) -> None:
        self.store, self.budget = store, budget

    def __call__(self, call: Callable[[], int]) -> Callable[[], int | None]:
        def guarded() -> int | None:
            connections = getattr(self.store.db, "_all", [])  # SQLite: every open connection
            timer = threading.Timer(self.budget, lambda: [c.interrupt() for c in connections])
            timer.start()
            try:
                return call()
            except (sqlite3.OperationalError, psycopg.errors.QueryCanceled) as error:
                if "interrupt" in str(error) or "statement timeout" in str(error):
                    return None
                raise
            finally:
                timer.cancel()
        return guarded


def time_calls(kind: Kind, label: str, calls: list[Callable[[], int | None]],
               budget: float, total: float) -> None:
    """Time each call; after one slower than `budget` seconds (or stopped) the rest are left
    out and the kind is marked as cut; after `total` seconds in all, sampling ends early."""
    timings, counts = kind.timings.setdefault(label, []), kind.results.setdefault(label, [])
    ends = time.perf_counter() + total
    for call in calls:
        if time.perf_counter() > ends:
            kind.cut[label] = f"{len(timings)} samples in the {total:g} s allowed"
            return
        started = time.perf_counter()
        found = call()
        elapsed = time.perf_counter() - started
        if found is None:
            kind.cut[label] = f"stopped after {budget:g} s"
            return
        counts.append(found)
        timings.append(elapsed * 1000)
        if elapsed > budget:
            kind.cut[label] = f"one request took {elapsed:.1f} s"
            return


def in_process(kinds: list[Kind], guard: Watchdog, total: float) -> None:
    with progress() as bar:
        task = bar.add_task("in-process", total=len(kinds))
        for kind in kinds:
            bar.update(task, description=f"in-process: {kind.name}")
            # The first samples also warm the page cache as the server will find it.
            time_calls(kind, "store", [guard(s.call) for s in kind.samples], guard.budget, total)
            floors = [guard(s.floor) for s in kind.samples if s.floor is not None]
            if floors:
                time_calls(kind, "SQL floor", floors, guard.budget, total)
            bar.advance(task)


def over_http(kinds: list[Kind], target: StoreTarget, budget: float, total: float) -> None:
    with HubServer(target) as server, httpx.Client(
            base_url=server.url, timeout=max(60.0, budget * 4),
            headers={"Accept": "application/json"}) as client, progress() as bar:
        task = bar.add_task("HTTP", total=len(kinds))

        def getter(path: str) -> Callable[[], int]:
            def get() -> int:
                response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                body = response.json()
                return len(body) if isinstance(body, list) else len(body.get("intensity", {})
                                                                   .get("avg", []))
            return get

        for kind in kinds:
            bar.update(task, description=f"HTTP: {kind.name}")
            if "store" in kind.cut and not kind.timings.get("store"):
                kind.cut["http"] = "not run: too slow in-process"
            else:
                for sample in kind.samples[:3]:
                    getter(sample.path)()
                time_calls(kind, "http", [getter(s.path) for s in kind.samples], budget, total)
            bar.advance(task)


def load(store: SqlStore, target: StoreTarget, args: argparse.Namespace) -> dict[str, Any]:
    marker = target.data_dir / "loaded.json"
    wanted = {"entities": args.entities, "observations": args.observations, "days": args.days}
    if args.reuse and marker.exists():
        loaded: dict[str, Any] = json.loads(marker.read_text())
        if {k: loaded.get(k) for k in wanted} == wanted:
            console.print(f"reusing the data loaded in {target.data_dir}")
            return loaded
    city = City(args.entities)
    with progress() as bar:
        started = time.perf_counter()
        load_entities(store, target, args.entities, city, batch=10_000, progress=bar)
        entity_seconds = time.perf_counter() - started
        started = time.perf_counter()
        with_history, steps = load_history(store, target, args.observations, args.entities,
                                           city, days=args.days, progress=bar)
        history_seconds = time.perf_counter() - started
    loaded = {**wanted, "with_history": with_history, "steps": steps,
              "observations_loaded": with_history * steps * 2,
              "entity_load_per_s": args.entities / entity_seconds,
              "history_load_per_s": with_history * steps * 2 / history_seconds}
    marker.write_text(json.dumps(loaded))
    return loaded


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    rng = random.Random(5)
    with fresh_store(args.store, folder, "query") as target:
        if args.store == "sqlite" and not args.reuse:
            db = target.data_dir / "cityhub.db"
            for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                path.unlink(missing_ok=True)
        store = SqlStore.open(target.url)
        try:
            loaded = load(store, target, args)
        finally:
            store.close()
        timeout = f"%20-cstatement_timeout%3D{int(args.budget * 1000)}"
        store = SqlStore.open(target.url + (timeout if args.store == "postgres" else ""))
        try:
            kinds = [*entity_kinds(store, args.entities, args.samples, rng),
                     temporal_kind(store, loaded["with_history"], loaded["steps"],
                                   args.samples, rng)]
            in_process(kinds, Watchdog(store, args.budget), args.kind_seconds)
        finally:
            store.close()
        over_http(kinds, target, args.budget, args.kind_seconds)
    return {"loaded": loaded, "kinds": {k.name: summarize(k) for k in kinds}}


def summarize(kind: Kind) -> dict[str, Any]:
    out: dict[str, Any] = {"example": kind.example, "goal": kind.goal, "cut": kind.cut}
    for label, values in kind.timings.items():
        counts = kind.results[label]
        out[label] = {"samples": len(values), "p50_ms": percentile(values, 50),
                      "p99_ms": percentile(values, 99),
                      "mean_results": sum(counts) / len(counts) if counts else float("nan")}
    return out


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    loaded = figures["loaded"]
    nan = {"p50_ms": float("nan"), "p99_ms": float("nan"), "mean_results": float("nan"),
           "samples": 0}
    rows, notes = [], []
    for name, k in figures["kinds"].items():
        store, http, floor = (k.get(x, nan) for x in ("store", "http", "SQL floor"))
        share = 1 - store["p50_ms"] / http["p50_ms"] if http["samples"] else float("nan")
        limit = GOALS["temporal" if name.startswith("temporal") else "entity"]
        verdict = "ok" if http["p50_ms"] < limit else "over goal"
        if not http["samples"]:
            verdict = "not measured (see below)"
        if k["cut"]:
            notes.append(f"{name}: " + "; ".join(f"{a} {b}" for a, b in k["cut"].items()))
        results = http["mean_results"] if http["samples"] else store["mean_results"]
        rows.append((name, results, store["p50_ms"], store["p99_ms"], http["p50_ms"],
                     http["p99_ms"], share, floor["p50_ms"], k["goal"], verdict))
    print_table(
        f"Query latency, {args.entities:,} entities, {loaded['observations_loaded']:,} "
        f"observations ({loaded['with_history']:,} entities x {loaded['steps']:,} steps x 2), "
        f"{args.samples} samples each, store {args.store}",
        ["query", "results", "store p50 ms", "store p99 ms", "HTTP p50 ms", "HTTP p99 ms",
         "framework share", "SQL floor p50 ms", "goal", "verdict"],
        rows,
    )
    for name, k in figures["kinds"].items():
        console.print(f"  {name}: {k['example']}")
    for note in notes:
        console.print(f"  [yellow]{note}[/]")
    console.print(
        "store: the store call in-process; HTTP: one client, sequential requests on a keep-alive "
        "connection; framework share = 1 - store p50 / HTTP p50. SQL floor: the temporal "
        "aggregation as one bare SQL statement. Bulk load: "
        f"{loaded.get('entity_load_per_s', float('nan')):,.0f} entities/s, "
        f"{loaded.get('history_load_per_s', float('nan')):,.0f} observations/s. "
        + machine_note())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--observations", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=14, help="days of history per entity")
    parser.add_argument("--samples", type=int, default=200, help="requests per query kind")
    parser.add_argument("--budget", type=float, default=5.0,
                        help="seconds: after one slower request a kind stops being sampled")
    parser.add_argument("--kind-seconds", type=float, default=60.0,
                        help="time allowed per query kind and path; fewer samples past it")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workdir", help="keep the database here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true",
                        help="with --workdir and SQLite: reuse data loaded by an earlier run")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20,000 entities, 200,000 observations, 30 samples")
    args = parser.parse_args()
    if args.quick:
        args.entities, args.observations = min(args.entities, 20_000), min(args.observations,
                                                                            200_000)
        args.samples = min(args.samples, 30)
    if args.reuse and (args.workdir is None or args.store != "sqlite"):
        parser.error("--reuse needs --workdir and --store sqlite")
    console.print(f"[bold]cityhub query benchmark[/] - {machine_note()}")
    with workdir(args.workdir) as folder:
        figures = run(args, folder)
    report(figures, args)
    save_results("query", args, figures)


if __name__ == "__main__":
    main()
