"""The demo's pieces outside the browser: supervised children, the edge config it writes, the
devices it keeps, the twin's pacing and seeds."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from cityhub.edge.config import load_config
from cityhub.edge.simulator import SimulatedDevice
from cityhub.web.children import ChildProcess
from cityhub.web.devices_worker import devices_for, save
from cityhub.web.district import DemoPaths, write_edge_config
from cityhub.web.twin_worker import Pacer, next_seed


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_that_dies_at_once_does_not_start(tmp_path: Path) -> None:
    child = ChildProcess("bad", python("import sys; print('no broker'); sys.exit(3)"),
                        tmp_path / "bad.log")
    with pytest.raises(RuntimeError, match="exited with 3: no broker"):
        child.start()


def test_sigint_stops_a_child_and_it_is_reaped(tmp_path: Path) -> None:
    child = ChildProcess("sleeper", python(
        "import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('bye')"),
        tmp_path / "sleeper.log")
    child.start()
    child.stop()
    assert child.process is not None
    assert child.process.returncode == 0
    assert "bye" in child.output()


def test_a_looping_child_is_started_again_when_its_run_ends(tmp_path: Path) -> None:
    ended: list[int] = []
    child = ChildProcess("loop", python("print('run')"), tmp_path / "loop.log", restart=True,
                         on_exit=lambda _name, code: ended.append(code))
    child.start()
    deadline = time.monotonic() + 30
    while child.runs < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    child.stop()
    assert child.runs >= 3
    assert ended[:2] == [0, 0]
    assert (tmp_path / "loop.log").read_text().count("run") >= 2


def test_the_edge_config_points_the_agent_at_the_broker_and_the_hub(tmp_path: Path) -> None:
    paths = DemoPaths(tmp_path / "demo")
    config = load_config(write_edge_config(paths, "127.0.0.1", 41883, "http://127.0.0.1:8001"))
    assert (config.mqtt_host, config.mqtt_port) == ("127.0.0.1", 41883)
    assert config.hub_url == "http://127.0.0.1:8001"
    assert config.outbox_path == paths.root / "edge-outbox.db"


def test_stored_devices_are_reused_without_asking_the_hub(tmp_path: Path) -> None:
    store = tmp_path / "devices.json"
    stored = [SimulatedDevice("", f"sim-airquality-{n}", "AirQualityObserved", f"t{n}")
              for n in range(5)]
    save(store, stored)
    devices, registered = devices_for("http://127.0.0.1:9", 3, store, (0.0, 0.0))
    assert registered == 0  # port 9 is never asked: nothing to register
    assert [(d.device_id, d.token) for d in devices] == [(d.device_id, d.token)
                                                         for d in stored[:3]]
    assert store.stat().st_mode & 0o077 == 0  # tokens are the owner's only


def test_each_twin_run_takes_the_next_seed(tmp_path: Path) -> None:
    assert [next_seed(tmp_path) for _ in range(3)] == [1, 2, 3]


def test_the_pacer_holds_the_simulation_to_the_speed_factor() -> None:
    wall = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        wall[0] += seconds

    pacer = Pacer(begin=0.0, speed=4.0, clock=lambda: wall[0], sleep=sleep)
    pacer(60.0)  # one simulated minute at 4x: 15 s of wall time
    wall[0] += 20.0  # the simulation itself was slower than that next time
    pacer(120.0)
    pacer(180.0)
    assert slept == [15.0, 10.0]  # never ahead, never sleeping to catch up
