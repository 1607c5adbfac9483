"""The benchmark matrix: scenarios x controllers x seeds, each run in its own fresh process
(2 at a time), summarised as mean ± std with delay ratios to `fixed` and `max-pressure`."""

from __future__ import annotations

import multiprocessing
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

from cityhub.sandbox.runner import RunSpec, run

TABLE_METRICS = ("avg_delay_s", "avg_trip_time_s", "avg_wait_s", "avg_queue_veh",
                 "throughput_veh", "unfinished_veh")


def _worker(spec: RunSpec) -> dict[str, Any]:
    import logging

    logging.disable(logging.INFO)
    return run(spec)


def run_matrix(scenarios: Sequence[str], controllers: Sequence[str], seeds: int, out: Path,
               workers: int = 2, seconds: float | None = None, sumo_home: Path | None = None,
               scenario_dir: Path | None = None,
               done: Callable[[dict[str, Any]], None] | None = None,
               all_red_s: float | None = None) -> list[dict[str, Any]]:
    """Run every combination, one process per run (libsumo is one simulation per process)."""
    base = RunSpec("", "", seconds=seconds, sumo_home=sumo_home, scenario_dir=scenario_dir,
                   all_red_s=all_red_s)
    specs = [
        replace(base, scenario=s, controller=c, seed=seed,
                out=out / Path(s).name.replace(".sumocfg", "") / c / f"seed{seed}")
        for s in scenarios for c in controllers for seed in range(1, seeds + 1)
    ]
    context = multiprocessing.get_context("spawn")
    results = []
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = [pool.submit(_worker, spec) for spec in specs]
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            if done is not None:
                done(result)
    return results


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scenario, controller): mean and std of each metric, delay ratios."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault((result["scenario"], result["controller"]), []).append(result)
    rows = []
    for (scenario, controller), runs in sorted(groups.items()):
        row: dict[str, Any] = {"scenario": scenario, "controller": controller, "runs": len(runs),
                               "sumo_version": runs[0]["sumo_version"]}
        for metric in (*TABLE_METRICS, "wall_s", "control_overhead"):
            row[metric] = _mean_std([float(r[metric]) for r in runs])
        rows.append(row)
    delay = {(r["scenario"], r["controller"]): r["avg_delay_s"][0] for r in rows}
    for row in rows:
        for base in ("fixed", "max-pressure"):
            ref = delay.get((row["scenario"], base))
            row[f"vs_{base}"] = row["avg_delay_s"][0] / ref if ref else None
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table as Markdown (what the CLI prints and docs/brain.md holds)."""
    head = ("| scenario | controller | delay s | trip s | wait s | queue veh | throughput | "
            "unfinished | ÷fixed | ÷max-pressure | control overhead |")
    lines = [head, "|" + "---|" * 11]

    def pm(r: dict[str, Any], key: str, digits: int = 2) -> str:
        mean, std = r[key]
        return f"{mean:.{digits}f} ± {std:.{digits}f}"

    def ratio(r: dict[str, Any], key: str) -> str:
        return f"{r[key]:.3f}" if r[key] is not None else "-"

    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['controller']} | {pm(r, 'avg_delay_s')} | "
            f"{pm(r, 'avg_trip_time_s', 1)} | {pm(r, 'avg_wait_s', 1)} | "
            f"{pm(r, 'avg_queue_veh', 1)} | {pm(r, 'throughput_veh', 0)} | "
            f"{pm(r, 'unfinished_veh', 0)} | {ratio(r, 'vs_fixed')} | "
            f"{ratio(r, 'vs_max-pressure')} | {r['control_overhead'][0]:.1%} |"
        )
    return "\n".join(lines)
