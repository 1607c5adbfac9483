"""Where the time of one request goes: cProfile over the whole hub in-process (the FastAPI app
driven through httpx's ASGI transport, no sockets) for batch upserts, a single attribute
update, a retrieval and a selective query, with the top costs per request.

    .venv/bin/python bench/hotpaths.py              # 2,000 entities, a few hundred requests
    .venv/bin/python bench/hotpaths.py --quick

(Not named profile.py: cProfile imports the standard library's `profile`.)

FastAPI runs `def` handlers in a thread pool, where cProfile (which profiles one thread) would
not see them; here they run inline on the event loop thread instead. That changes no work a
request does, only which thread does it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import fastapi.dependencies.utils
import fastapi.routing
import httpx
import orjson

from cityhub.api.app import create_app
from cityhub.config import Settings
from harness import OUT_DIR, console, machine_note, print_table, save_results, workdir
from workload import ENTITY_TYPE, City, entity_id, payload, segment_id

T = TypeVar("T")
NGSI = "/ngsi-ld/v1"


async def _inline(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return func(*args, **kwargs)


@dataclass
class Case:
    name: str
    requests: list[tuple[str, str, bytes | None]]  # method, path, body
    per_request_unit: int = 1  # entities per request (batches)


def cases(count: int, batch: int, repeats: int, first: int = 0) -> list[Case]:
    """The profiled requests on entities [first, first + count)."""
    city = City(first + count)
    observed = "2026-11-01T08:00:00Z"
    upserts: list[list[tuple[str, str, bytes | None]]] = [[], []]
    for version in range(2):  # create, then update every value
        for start in range(first, first + count, batch):
            body = [payload(i, city, observed, version)
                    for i in range(start, min(first + count, start + batch))]
            upserts[version].append(("POST", f"{NGSI}/entityOperations/upsert",
                                     orjson.dumps(body)))
    ids = [quote(entity_id(first + (i * 7919) % count), safe=":") for i in range(repeats)]
    segments = count // 10
    return [
        Case("upsert batch, create", upserts[0], batch),
        Case("upsert batch, update", upserts[1], batch),
        Case("single update", [("PATCH", f"{NGSI}/entities/{i}/attrs/intensity",
                                orjson.dumps({"value": n, "observedAt": observed}))
                               for n, i in enumerate(ids)]),
        Case("retrieve", [("GET", f"{NGSI}/entities/{i}", None) for i in ids]),
        Case("query", [("GET", f"{NGSI}/entities?" + urlencode({
            "type": ENTITY_TYPE,
            "q": f'refRoadSegment=="{segment_id(first + (n * 37) % segments * 10)}"'
        }), None) for n in range(max(3, repeats // 3))]),
        Case("health", [("GET", "/health", None)] * repeats),
    ]


class Profiled:
    """The app, profiled while it handles a request (the test client's own work is not)."""

    def __init__(self, app: Any, profiler: cProfile.Profile | None) -> None:
        self.app, self.profiler = app, profiler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.profiler is None:
            await self.app(scope, receive, send)
            return
        self.profiler.enable()
        try:
            await self.app(scope, receive, send)
        finally:
            self.profiler.disable()


async def drive(app: Any, case: Case, profiler: cProfile.Profile | None) -> None:
    transport = httpx.ASGITransport(app=Profiled(app, profiler))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                 headers={"Accept": "application/json",
                                          "Content-Type": "application/json"}) as client:
        for method, path, body in case.requests:
            response = await client.request(method, path, content=body)
            if response.status_code >= 400:
                raise RuntimeError(f"{case.name}: {response.status_code} {response.text[:300]}")


def top_costs(stats: pstats.Stats, requests: int, limit: int) -> list[dict[str, Any]]:
    """The functions with the most own time, per request, with their cumulative time."""
    entries = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    for (filename, line, function), (_cc, calls, own, cumulative, _callers) in raw.items():
        where = _short(filename)
        entries.append({"function": f"{where}:{line}({function})", "calls": calls / requests,
                        "own_us": own / requests * 1e6, "cum_us": cumulative / requests * 1e6,
                        "own_share": own / total if total else 0.0})
    entries.sort(key=lambda e: e["own_us"], reverse=True)
    return entries[:limit]


def _short(filename: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def profile_all(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    # def-handlers run inline (see module docstring)
    patched: list[Any] = [fastapi.routing, fastapi.dependencies.utils]
    for module in patched:
        module.run_in_threadpool = _inline
    settings = Settings(store_url=f"sqlite:///{folder / 'profile.db'}", data_dir=folder,
                        auth="disabled")
    app = create_app(settings)
    figures: dict[str, Any] = {}

    async def main() -> None:
        async with app.router.lifespan_context(app):
            # First calls build caches (routes, dependants, q grammar): warm up on other ids.
            for case in cases(20, 10, 3, first=args.entities):
                await drive(app, case, None)
            for case in cases(args.entities, args.batch, args.repeats):
                profiler = cProfile.Profile()
                loop = asyncio.get_running_loop()
                started = loop.time()
                await drive(app, case, profiler)
                elapsed = loop.time() - started
                stats = pstats.Stats(profiler)
                n = len(case.requests)
                slug = case.name.replace(",", "").replace(" ", "-")
                text = OUT_DIR / f"profile-{slug}{'-quick' if args.quick else ''}.txt"
                OUT_DIR.mkdir(exist_ok=True)
                with text.open("w") as out:
                    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(40)
                    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
                figures[case.name] = {
                    "requests": n, "entities_per_request": case.per_request_unit,
                    "profiled_ms_per_request": elapsed / n * 1000,
                    "top": top_costs(stats, n, args.top),
                }

    asyncio.run(main())
    return figures


def report(figures: dict[str, Any]) -> None:
    for name, case in figures.items():
        rows = [(e["function"], e["calls"], e["own_us"], e["cum_us"], f"{e['own_share']:.0%}")
                for e in case["top"]]
        unit = case["entities_per_request"]
        per = f", {case['profiled_ms_per_request'] / unit * 1000:,.0f} µs per entity" if (
            unit > 1) else ""
        print_table(
            f"{name}: {case['requests']} requests, {case['profiled_ms_per_request']:.2f} ms per "
            f"request under the profiler{per}",
            ["function (own time, top)", "calls/req", "own µs/req", "cumulative µs/req",
             "share"],
            rows,
        )
    console.print("Full listings (own and cumulative) are in bench/out/profile-*.txt. cProfile "
                  "adds overhead per call: shares matter, absolute times are inflated. "
                  + machine_note())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=300, help="single requests per case")
    parser.add_argument("--top", type=int, default=15, help="functions listed per case")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.entities, args.batch, args.repeats = 500, 250, 40
    console.print(f"[bold]cityhub request profile[/] - {machine_note()}")
    with workdir(None) as folder:
        figures = profile_all(args, folder)
    report(figures)
    save_results("hotpaths", args, figures)


if __name__ == "__main__":
    main()
