"""`cityhub sandbox run` and `bench` on a generated district: files, metrics, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cityhub.sandbox.scenarios import Scenario, resolve
from tests.sandbox.conftest import cli

REQUIRED = {"avg_delay_s", "avg_trip_time_s", "avg_wait_s", "avg_queue_veh", "throughput_veh",
            "unfinished_veh", "wall_s", "sumo_version", "junctions"}
MEASURED = ("avg_delay_s", "avg_trip_time_s", "avg_wait_s", "avg_queue_veh", "throughput_veh",
            "unfinished_veh", "junctions", "congestion_index_mean")


def test_generated_grid_has_signals_and_demand(small_grid: Scenario) -> None:
    text = small_grid.net.read_text()
    assert text.count('<tlLogic id="') == 4
    assert small_grid.end == 300
    assert "<vehicle " in (small_grid.folder / "grid.rou.xml").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("controller", ["cityhub", "cityhub@2.1"])
def test_same_seed_in_two_processes_gives_the_same_metrics(small_grid: Scenario,
                                                           tmp_path: Path,
                                                           controller: str) -> None:
    runs = []
    for name in ("a", "b"):
        done = cli("sandbox", "run", "--scenario", str(small_grid.config), "--controller",
                   controller, "--seed", "3", "--seconds", "240", "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        runs.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    assert set(runs[0]) >= REQUIRED
    assert runs[0]["throughput_veh"] > 0
    assert set(runs[0]["junctions"])
    assert runs[0]["sumo_version"].startswith("1.")
    assert {k: runs[0][k] for k in MEASURED} == {k: runs[1][k] for k in MEASURED}
    version = "cityhub@2.1#" if controller == "cityhub@2.1" else "cityhub@2.2#"  # the default
    assert runs[0]["controller_identity"].startswith(version)
    # v2.1 and v2.2 read stop-line detectors, which the twin adds to the run
    assert (tmp_path / "a" / "near.add.xml").exists()
    for name in ("a", "b"):
        assert (tmp_path / name / "plot.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / name / "timeseries.csv").read_text().startswith("time_s,queue_veh")


@pytest.mark.slow
def test_bench_prints_the_table_with_ratios(small_grid: Scenario, tmp_path: Path) -> None:
    done = cli("sandbox", "bench", "--scenarios", str(small_grid.config), "--controllers",
               "fixed,actuated,max-pressure", "--seeds", "1", "--seconds", "180",
               "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("| grid |")]
    assert [line.split("|")[2].strip() for line in lines] == ["actuated", "fixed",
                                                             "max-pressure"]
    fixed = next(line for line in lines if "| fixed |" in line)
    assert "| 1.000 |" in fixed
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert {r["controller"] for r in rows} == {"fixed", "actuated", "max-pressure"}


def test_resco_scenarios_are_found_beside_the_repository() -> None:
    scenario = resolve("cologne1")
    assert scenario.begin == 25200
    assert scenario.end == 28800
    assert resolve("arterial4x4").yellow_s == 2.0


def test_bad_scenario_and_controller_are_one_line_errors(tmp_path: Path) -> None:
    done = cli("sandbox", "run", "--scenario", "atlantis", "--out", str(tmp_path))
    assert done.returncode == 1
    assert "no scenario 'atlantis'" in done.stderr
    assert "Traceback" not in done.stderr
    done = cli("sandbox", "run", "--scenario", "cologne1", "--controller", "magic")
    assert done.returncode == 1
    assert "unknown controller 'magic'" in done.stderr
    done = cli("sandbox", "generate", "grid", "--size", "four", "--out", str(tmp_path))
    assert done.returncode == 1
    assert "--size must look like 4x4" in done.stderr


def test_generated_arterial_and_two_lane_grid_are_signalised(tmp_path: Path) -> None:
    from cityhub.sandbox.generate import Demand, arterial, grid

    line = arterial(tmp_path / "a", 3, Demand(600, 120, seed=1))
    assert line.net.read_text().count("<tlLogic ") == 3
    square = grid(tmp_path / "g", 3, 2, Demand(600, 120, seed=1), lanes=2)
    assert square.net.read_text().count("<tlLogic ") == 6


RUN_IN_PROCESS = """
import gc, sys
from pathlib import Path
from cityhub.sandbox.runner import RunSpec, run

frozen = []
metrics = run(RunSpec(sys.argv[1], "cityhub", seconds=300, out=Path(sys.argv[2])),
              observer=lambda twin, now: frozen.append(gc.get_freeze_count()))
assert frozen and min(frozen) > 0, frozen  # the heap was frozen while the loop ran
assert gc.get_freeze_count() == 0  # and handed back to the collector after it
assert metrics["overhead_clock"] == "thread-cpu", metrics["overhead_clock"]
assert 0 < metrics["control_s"] < metrics["wall_s"], metrics
"""


def test_the_loop_freezes_the_heap_only_while_it_runs(small_grid: Scenario,
                                                       tmp_path: Path) -> None:
    # A full collection walking every imported object once cost grid4x4 a tenth of its control
    # time; a program that runs the twin in its own process must get its collector back.
    done = subprocess.run([sys.executable, "-c", RUN_IN_PROCESS, str(small_grid.config),
                           str(tmp_path / "out")], capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr
