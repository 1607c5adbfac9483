"""Metrics of a run: RESCO's delay and friends from tripinfo, queues, per-junction figures,
and the files a run leaves (metrics.json, timeseries.csv, plot.png)."""

from __future__ import annotations

import csv
import json
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from cityhub.sandbox.twin import RunRecord


def trip_metrics(tripinfo: Path) -> dict[str, float]:
    """RESCO's delay: mean of timeLoss + departDelay over every tripinfo entry, unfinished
    vehicles included (SUMO writes them with arrival -1)."""
    delays, durations, waits = [], [], []
    finished = unfinished = 0
    for _, node in ET.iterparse(tripinfo):  # noqa: S314 - SUMO's own output file
        if node.tag != "tripinfo":
            continue
        delays.append(float(node.get("timeLoss", 0)) + float(node.get("departDelay", 0)))
        durations.append(float(node.get("duration", 0)))
        waits.append(float(node.get("waitingTime", 0)))
        if float(node.get("arrival", -1)) < 0:
            unfinished += 1
        else:
            finished += 1
        node.clear()
    mean = statistics.fmean
    return {
        "avg_delay_s": round(mean(delays), 3) if delays else 0.0,
        "avg_trip_time_s": round(mean(durations), 3) if durations else 0.0,
        "avg_wait_s": round(mean(waits), 3) if waits else 0.0,
        "throughput_veh": finished,
        "unfinished_veh": unfinished,
        "trips": len(delays),
    }


def summarise(record: RunRecord, tripinfo: Path) -> dict[str, Any]:
    """The metrics dictionary written to metrics.json."""
    metrics: dict[str, Any] = trip_metrics(tripinfo)
    queues = [q for _, q, _ in record.queue_series]
    metrics["avg_queue_veh"] = round(statistics.fmean(queues), 3) if queues else 0.0
    metrics["wall_s"] = round(record.wall_s, 3)
    metrics["control_s"] = round(record.control_s, 3)
    bare = record.loop_s - record.control_s
    metrics["control_overhead"] = round(record.control_s / bare, 4) if bare > 0 else 0.0
    metrics["overhead_clock"] = record.clock
    metrics["sumo_version"] = record.sumo_version
    metrics["backend"] = record.backend
    peak = record.congestion.peak("city")
    metrics["congestion_index_mean"] = record.congestion.mean("city")
    metrics["congestion_index_peak"] = peak[1] if peak else None
    metrics["junctions"] = {
        tls: {
            "avg_queue_veh": round(statistics.fmean(series), 3) if series else 0.0,
            "max_queue_veh": max(series) if series else 0,
            "phase_switches": record.switches.get(tls),
        }
        for tls, series in sorted(record.junction_queue.items())
    }
    return metrics


def write_outputs(out: Path, metrics: dict[str, Any], record: RunRecord) -> None:
    """metrics.json, timeseries.csv (time, queue, vehicles, city index) and plot.png."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    index = dict(record.congestion.points.get("city", []))
    with (out / "timeseries.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time_s", "queue_veh", "vehicles", "congestion_index"])
        for t, queue, vehicles in record.queue_series:
            writer.writerow([f"{t:g}", queue, vehicles, index.get(t, "")])
    _plot(out / "plot.png", metrics, record)


def _plot(path: Path, metrics: dict[str, Any], record: RunRecord) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    times = [t / 60 for t, _, _ in record.queue_series]
    top.plot(times, [q for _, q, _ in record.queue_series], label="queued vehicles")
    top.plot(times, [v for _, _, v in record.queue_series], label="vehicles in network")
    top.legend(loc="upper left")
    top.set_title(f"avg delay {metrics['avg_delay_s']:.1f} s, SUMO {metrics['sumo_version']}")
    series = record.congestion.points.get("city", [])
    bottom.plot([t / 60 for t, _ in series], [v for _, v in series], color="firebrick")
    bottom.set_ylim(0, 10)
    bottom.set_ylabel("congestion index")
    bottom.set_xlabel("simulated minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
