"""Single-request throughput of the NGSI-LD API with C concurrent keep-alive clients:
partial attribute updates (`PATCH /entities/{id}/attrs/intensity`), retrievals
(`GET /entities/{id}`) and selective queries (`GET /entities?type=..&q=refRoadSegment==..`,
10 results), each beside the bare `GET /health` of the same server stack in the same run.

    .venv/bin/python bench/api.py                    # 10,000 entities, 16 clients, 10 s a phase
    .venv/bin/python bench/api.py --generator both   # wrk and the Python client side by side
    .venv/bin/python bench/api.py --quick
    .venv/bin/python bench/api.py --workers 2 --store postgres
    .venv/bin/python bench/api.py --only update      # /health and the updates only

Goals: >= 3,000 updates/s and >= 5,000 retrievals/s (Orion-LD reference: ~1,800 updates/s,
4,200 retrievals/s, 2,500 queries/s on one CPU with MongoDB on 8).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from cityhub.store.sql import SqlStore
from harness import (
    CpuMeter,
    HubServer,
    console,
    fresh_store,
    machine_note,
    print_table,
    progress,
    save_results,
    workdir,
)
from loaders import load_entities
from loadgen import Endpoint, LoadResult, pick_generator, run_load
from workload import ENTITIES_PER_SEGMENT, ENTITY_TYPE, City, entity_id, segment_id

NGSI = "/ngsi-ld/v1"
GOALS = {"update": 3000.0, "retrieve": 5000.0}
ORION_LD = {"update": 1800.0, "retrieve": 4200.0, "query": 2500.0}


def endpoints(count: int, samples: int, rng: random.Random) -> list[Endpoint]:
    """The request kinds, each with `samples` random targets (uniform over the entities)."""
    ids = [quote(entity_id(rng.randrange(count)), safe=":") for _ in range(samples)]
    segments = count // ENTITIES_PER_SEGMENT
    queries = [
        f"{NGSI}/entities?" + urlencode({
            "type": ENTITY_TYPE,
            "q": f'refRoadSegment=="{segment_id(rng.randrange(segments) * ENTITIES_PER_SEGMENT)}"',
        })
        for _ in range(samples)
    ]
    return [
        Endpoint("health", "GET", ["/health"]),
        Endpoint("retrieve", "GET", [f"{NGSI}/entities/{i}" for i in ids]),
        Endpoint("update", "PATCH", [f"{NGSI}/entities/{i}/attrs/intensity" for i in ids],
                 '{"value": %d, "observedAt": "2026-11-02T08:00:00Z"}'),
        Endpoint("query", "GET", queries),  # last: a query too slow to measure may keep
    ]                                       # the server busy after its probe gives up


def probe(server: HubServer, endpoint: Endpoint, timeout: float) -> float:
    """Seconds one request takes (inf past `timeout`): a kind that is this slow is not
    driven at full concurrency, which would only pile up requests."""
    body = endpoint.body_format % 1 if endpoint.body_format else None
    started = time.perf_counter()
    try:
        response = httpx.request(endpoint.method, server.url + endpoint.paths[0], content=body,
                                 headers={"Content-Type": "application/json"}, timeout=timeout)
    except httpx.TimeoutException:
        return float("inf")
    if response.status_code not in endpoint.ok:
        raise RuntimeError(f"{endpoint.name}: {response.status_code} {response.text[:300]}")
    return time.perf_counter() - started


def measure(server: HubServer, generator: str, endpoint: Endpoint,
            args: argparse.Namespace, start: int) -> tuple[LoadResult, CpuMeter]:
    run_load(generator, server.url, endpoint, clients=args.clients, seconds=args.warmup,
             start=start)
    with CpuMeter(server) as meter:
        result = run_load(generator, server.url, endpoint, clients=args.clients,
                          seconds=args.seconds, start=start + 10_000_000)
    return result, meter


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    rng = random.Random(11)
    kinds = [e for e in endpoints(args.entities, 5000, rng)
             if e.name == "health" or args.only is None or e.name in args.only]
    generators = pick_generator(args.generator)
    figures: dict[str, Any] = {"generators": generators, "results": {}}
    with fresh_store(args.store, folder, "api") as target:
        store = SqlStore.open(target.url)
        try:
            with progress() as bar:
                load_entities(store, target, args.entities, City(args.entities),
                              batch=5000, progress=bar)
        finally:
            store.close()
        with HubServer(target, workers=args.workers) as server, progress() as bar:
            task = bar.add_task("phases", total=len(kinds) * len(generators))
            for at, endpoint in enumerate(kinds):
                one = probe(server, endpoint, args.probe_timeout)
                for generator in generators:
                    results = figures["results"].setdefault(generator, {})
                    bar.update(task, description=f"{generator}: {endpoint.name}")
                    if one > args.max_latency:
                        results[endpoint.name] = {"skipped": f"one request took {one:.1f} s"}
                    else:
                        result, meter = measure(server, generator, endpoint, args,
                                                start=(at + 1) * 100_000_000)
                        results[endpoint.name] = {**result.summary(), "server_cpu":
                                                  meter.server_cpu, "generator_cpu":
                                                  meter.client_cpu}
                    bar.advance(task)
    return figures


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    rows: list[tuple[Any, ...]] = []
    for generator, results in figures["results"].items():
        floor = results["health"]["per_second"]
        for name, r in results.items():
            if "skipped" in r:
                rows.append((name, generator, "-", "-", "-", "-", "-", "-", "-", "-",
                             f"not measured: {r['skipped']}", ""))
                continue
            goal = GOALS.get(name)
            verdict = "" if goal is None else ("ok" if r["per_second"] >= goal
                                              else f"{r['per_second'] / goal:.0%} of {goal:,.0f}")
            orion = ORION_LD.get(name)
            per_cpu = r["per_second"] / r["server_cpu"] if r["server_cpu"] else float("nan")
            r["per_server_cpu_second"] = per_cpu
            rows.append((name, generator, r["per_second"], r["per_second"] / floor, per_cpu,
                         r["p50_ms"], r["p99_ms"], f"{r['server_cpu']:.0%}",
                         f"{r['generator_cpu']:.0%}",
                         r["errors"], verdict,
                         "" if orion is None else f"{r['per_second'] / orion:.2f}x"))
            r["ratio_to_health"] = r["per_second"] / floor
    print_table(
        f"Single requests, {args.entities:,} entities, {args.clients} keep-alive clients, "
        f"{args.seconds:g} s a phase, store {args.store}, {args.workers} hub process(es)",
        ["request", "generator", "req/s", "ratio to /health", "per server CPU-s", "p50 ms",
         "p99 ms", "server CPU",
         "generator CPU", "errors", "goal", "vs Orion-LD ref"],
        rows,
    )
    for results in figures["results"].values():
        for name, r in results.items():
            if r.get("first_error"):
                console.print(f"[red]{name}: first error: {r['first_error']}[/]")
    console.print(
        f"generator(s): {', '.join(figures['generators'])} (wrk: one thread, C; httpx: asyncio "
        "in this process). CPU columns are shares of one core: a generator near 100% cannot "
        "push harder, a server near 100% is saturated; 'per server CPU-s' (req/s divided by the "
        "server's CPU share) is steadier when other work takes the cores. " + machine_note())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured time per phase")
    parser.add_argument("--generator", choices=("auto", "httpx", "wrk", "both"), default="auto",
                        help="load generator; auto: wrk if installed, else httpx")
    parser.add_argument("--max-latency", type=float, default=1.0,
                        help="skip a kind whose single probe request takes longer (s)")
    parser.add_argument("--probe-timeout", type=float, default=60.0)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1,
                        help="hub processes (cityhub serve --workers); CPU columns add them up")
    parser.add_argument("--only", type=lambda text: set(text.split(",")),
                        help="measure only these kinds (comma-separated: retrieve, update, "
                             "query); /health is always measured, as the ratios' floor")
    parser.add_argument("--workdir", help="keep the database here (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 entities, 2 s")
    args = parser.parse_args()
    if args.quick:
        args.entities, args.seconds, args.warmup = min(args.entities, 2000), 2.0, 0.5
    console.print(f"[bold]cityhub API benchmark[/] - {machine_note()}")
    with workdir(args.workdir) as folder:
        figures = run(args, folder)
    report(figures, args)
    save_results("api", args, figures)


if __name__ == "__main__":
    main()
