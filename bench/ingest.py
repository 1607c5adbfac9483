"""Batch upsert throughput: entities/s through HTTP (`POST /entityOperations/upsert`) against
the store's own rate in-process (`EntityService.batch` on a fresh database, no HTTP), for new
entities and then for updates of the same entities, measured in the same run.

    .venv/bin/python bench/ingest.py                 # 20,000 entities in batches of 1,000, SQLite
    .venv/bin/python bench/ingest.py --store postgres
    .venv/bin/python bench/ingest.py --quick         # a smoke run of a few seconds
    .venv/bin/python bench/ingest.py --repeat 5      # 5 alternating rounds: median ratios

Goals printed beside the figures: >= 20,000 upserts/s batched on SQLite, HTTP >= 50% of raw.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from cityhub.ngsild.payload import format_datetime, parse_entity
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from harness import (
    CpuMeter,
    HubServer,
    StoreTarget,
    console,
    fresh_store,
    machine_note,
    print_table,
    progress,
    save_results,
    workdir,
)
from workload import ENTITY_TYPE, City, core_terms, payload

UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
GOAL_RATE = 20_000.0
GOAL_RATIO = 0.5
# Server configurations compared in one run: name -> extra CITYHUB_ environment of the hub;
# the table shows each one's ratio to "plain". "plain": no authentication, audit events
# dropped. "auth+audit": a device of the owning department sends a bearer token; every batch is
# authenticated, decided by the policy decision point against the catalogue, and its audit
# events go to the real Merkle ledger (the buffered LedgerSink, signed heads included).
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "plain": {"CITYHUB_AUTH": "disabled", "CITYHUB_AUDIT_ENABLED": "false"},
    "auth+audit": {"CITYHUB_AUTH": "enabled", "CITYHUB_AUDIT_ENABLED": "true"},
}
GOAL_AUTH_RATIO = 0.7  # issue 3: auth+audit at least 70% of plain
PHASES = ("create", "update")


@dataclass
class Rate:
    entities: int
    seconds: float
    server_cpu: float = float("nan")
    client_cpu: float = float("nan")

    @property
    def per_second(self) -> float:
        return self.entities / self.seconds

    def per_cpu_second(self, cpu_share: float) -> float:
        """Entities per CPU-second of the process doing the work: steadier than the wall-clock
        rate when other work takes the cores."""
        return self.per_second / cpu_share if cpu_share > 0 else float("nan")


def batches(count: int, size: int, version: int, city: City) -> Iterator[list[dict[str, Any]]]:
    """The payloads of one phase: version 0 creates, version 1 updates every value."""
    observed = format_datetime(datetime(2026, 11, 1, 8, tzinfo=UTC) + timedelta(minutes=version))
    for start in range(0, count, size):
        yield [payload(i, city, observed, version) for i in range(start, min(count, start + size))]


def provision(target: StoreTarget) -> dict[str, str]:
    """Catalogue the benchmark's entity type (transport, internal) and return the headers of a
    transport device's bearer token, minted by the built-in issuer in the hub's store."""
    from cityhub.config import Settings
    from cityhub.governance.catalogue import SqlCatalogue
    from cityhub.governance.datasets import Dataset, Tier
    from cityhub.governance.identity import PrincipalKind
    from cityhub.governance.issuer import BuiltinIssuer

    settings = Settings()
    store = SqlStore.open(target.url)
    try:
        issuer = BuiltinIssuer(store.db, settings.auth_issuer, settings.auth_audience)
        issuer.add_department("transport")
        issuer.add_account("counter-1", PrincipalKind.DEVICE, "transport")
        SqlCatalogue(store.db).put(Dataset(
            "traffic-flow", "Traffic flow", core_terms().expand_term(ENTITY_TYPE), "transport",
            Tier.INTERNAL))
        return {"Authorization": f"Bearer {issuer.issue('counter-1')}"}
    finally:
        store.close()


async def post_all(url: str, bodies: list[bytes], sizes: list[int], clients: int,
                   label: str, headers: dict[str, str]) -> float:
    """Send every batch once over `clients` keep-alive connections; return the elapsed time."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    queue = iter(range(len(bodies)))
    failures: list[str] = []
    with progress() as bar:
        task = bar.add_task(label, total=sum(sizes))
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300.0) as client:

            async def sender() -> None:
                for at in queue:
                    response = await client.post(
                        UPSERT, content=bodies[at],
                        headers={"Content-Type": "application/json", **headers})
                    if response.status_code not in (201, 204):
                        failures.append(f"{response.status_code} {response.text[:300]}")
                    bar.advance(task, sizes[at])

            started = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(clients)))
            elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} batches failed, first: {failures[0]}")
    return elapsed


def http_phase(server: HubServer, args: argparse.Namespace, city: City, version: int,
               headers: dict[str, str]) -> Rate:
    chunks = list(batches(args.entities, args.batch, version, city))
    bodies = [orjson.dumps(chunk) for chunk in chunks]  # encoded before the clock starts
    sizes = [len(chunk) for chunk in chunks]
    with CpuMeter(server) as meter:
        elapsed = asyncio.run(post_all(server.url, bodies, sizes, args.clients,
                                       f"HTTP {PHASES[version]}", headers))
    return Rate(args.entities, elapsed, meter.server_cpu, meter.client_cpu)


def raw_phase(service: EntityService, args: argparse.Namespace, city: City, version: int) -> Rate:
    terms = core_terms()
    parsed = [[parse_entity(p, terms) for p in chunk]  # parsing is HTTP-side work: not timed
              for chunk in batches(args.entities, args.batch, version, city)]
    with progress() as bar:
        task = bar.add_task(f"raw {PHASES[version]}", total=args.entities)
        with CpuMeter(None) as meter:
            for chunk in parsed:
                outcome = service.batch("", "upsert", chunk)
                if outcome.errors:
                    raise RuntimeError(f"raw batch failed: {outcome.errors[0]}")
                bar.advance(task, len(chunk))
    return Rate(args.entities, meter.wall, float("nan"), meter.client_cpu)


def ledger_records(target: StoreTarget) -> int:
    """Records in the Merkle audit ledger after a run (the hub flushed its sink on exit)."""
    from cityhub.governance.ledger import Ledger

    store = SqlStore.open(target.url)
    try:
        return Ledger(store.db).size()
    finally:
        store.close()


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    city = City(args.entities)
    figures: dict[str, Any] = {"raw": {}, "http": {}, "ledger_records": {}}
    with fresh_store(args.store, folder, "raw") as target:
        store = SqlStore.open(target.url)
        try:
            service = EntityService(store)
            for version, phase in enumerate(PHASES):
                figures["raw"][phase] = raw_phase(service, args, city, version).__dict__
        finally:
            store.close()
    figures["rounds"] = []
    for round_ in range(args.repeat):
        # Alternate the order each round, so that a drift of the machine's load over the run
        # favours neither configuration.
        order = args.configs if round_ % 2 == 0 else list(reversed(args.configs))
        measured: dict[str, Any] = {}
        for name in order:
            measured[name] = {}
            with fresh_store(args.store, folder,
                             f"http-{name.replace('+', '-')}-{round_}") as target:
                env = CONFIGURATIONS[name]
                headers = provision(target) if env.get("CITYHUB_AUTH") == "enabled" else {}
                with HubServer(target, env) as server:
                    for version, phase in enumerate(PHASES):
                        measured[name][phase] = http_phase(server, args, city, version,
                                                           headers).__dict__
                figures["ledger_records"][name] = ledger_records(target)
        figures["rounds"].append(measured)
    figures["http"] = figures["rounds"][0]
    return figures


def _rate(figures: dict[str, Any]) -> Rate:
    return Rate(figures["entities"], figures["seconds"], figures["server_cpu"],
                figures["client_cpu"])


def round_ratios(figures: dict[str, Any], args: argparse.Namespace) -> None:
    """auth+audit against plain in each round (wall-clock and per CPU-second), and medians."""
    if not {"plain", "auth+audit"} <= set(args.configs):
        return
    rows = []
    summary: dict[str, dict[str, float]] = {}
    for phase in PHASES:
        wall, cpu = [], []
        for number, measured in enumerate(figures["rounds"], 1):
            plain, audited = _rate(measured["plain"][phase]), _rate(measured["auth+audit"][phase])
            wall.append(audited.per_second / plain.per_second)
            cpu.append(audited.per_cpu_second(audited.server_cpu)
                       / plain.per_cpu_second(plain.server_cpu))
            rows.append((f"round {number}, {phase}", plain.per_second, audited.per_second,
                         wall[-1], cpu[-1]))
        summary[phase] = {"wall": statistics.median(wall), "cpu": statistics.median(cpu)}
        rows.append((f"median, {phase}", "", "", summary[phase]["wall"], summary[phase]["cpu"]))
    figures["auth_ratio"] = summary
    print_table(f"auth+audit against plain, {args.repeat} rounds (goal >= {GOAL_AUTH_RATIO})",
                ["round, phase", "plain entities/s", "auth+audit entities/s",
                 "ratio wall-clock", "ratio per CPU-s"], rows)


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    rows = []
    for phase in PHASES:
        raw = Rate(**figures["raw"][phase])
        raw_cpu = raw.per_cpu_second(raw.client_cpu)
        rows.append((f"raw store, {phase}", raw.per_second, raw_cpu, "",
                     f"{raw.client_cpu:.0%}", 1.0, 1.0, _goal(raw.per_second, None)))
        base = None
        for name in args.configs:
            http = Rate(**figures["http"][name][phase])
            ratio = http.per_second / raw.per_second
            versus = "" if base is None else (
                f" ({http.per_second / base:.2f}x {args.configs[0]}"
                + (f", goal >= {GOAL_AUTH_RATIO}" if name == "auth+audit" else "") + ")")
            base = base or http.per_second
            cpu_ratio = http.per_cpu_second(http.server_cpu) / raw_cpu
            rows.append((f"HTTP ({name}), {phase}", http.per_second,
                         http.per_cpu_second(http.server_cpu), f"{http.server_cpu:.0%}",
                         f"{http.client_cpu:.0%}", ratio, cpu_ratio,
                         _goal(http.per_second, ratio) + versus))
            figures["http"][name][phase]["ratio_to_raw"] = ratio
            figures["http"][name][phase]["cpu_ratio_to_raw"] = cpu_ratio
    print_table(
        f"Batch upsert, {args.entities:,} TrafficFlowObserved entities, batches of {args.batch}, "
        f"{args.clients} HTTP clients, store {args.store}",
        ["path, phase", "entities/s", "per CPU-s", "server CPU", "bench CPU", "ratio to raw",
         "ratio per CPU-s",
         f"goal >= {GOAL_RATE:,.0f}/s, >= {GOAL_RATIO:.0%} of raw"],
        rows,
    )
    console.print("Audit ledger records after each configuration's run: " + ", ".join(
        f"{name} {count:,}" for name, count in figures["ledger_records"].items()))
    console.print("CPU columns are shares of one core used by the hub process and by this script; "
                  "'per CPU-s' divides the rate by the working process's CPU share. "
                  + machine_note())


def _goal(rate: float, ratio: float | None) -> str:
    marks = ["rate ok" if rate >= GOAL_RATE else f"rate {rate / GOAL_RATE:.0%} of goal"]
    if ratio is not None:
        marks.append("ratio ok" if ratio >= GOAL_RATIO else "ratio below goal")
    return ", ".join(marks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000, help="entities per upsert request")
    parser.add_argument("--clients", type=int, default=2,
                        help="concurrent HTTP clients (each keeps one connection)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGURATIONS),
                        default=list(CONFIGURATIONS), help="server configurations to compare")
    parser.add_argument("--workdir", help="keep the databases here (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every configuration (alternating their order); the "
                        "auth+audit ratio is reported per round and as the median")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 entities")
    args = parser.parse_args()
    if args.quick:
        args.entities, args.batch = min(args.entities, 2000), min(args.batch, 500)
    console.print(f"[bold]cityhub ingest benchmark[/] - {machine_note()}")
    with workdir(args.workdir) as folder:
        figures = run(args, folder)
    report(figures, args)
    round_ratios(figures, args)
    save_results("ingest", args, figures)


if __name__ == "__main__":
    main()
