"""`cityhub demo` as a user runs it: help, every part started, a clean Ctrl-C that leaves no
process behind, and a second run that resumes from the data dir."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cityhub.web.testing import RunningHub, running_cityhub

pytestmark = pytest.mark.slow
CITYHUB = str(Path(sys.executable).parent / "cityhub")
CITY_INDEX = "urn:ngsi-ld:CongestionIndex:demo:city"
READY = {"ready_path": "/ops/summary", "ready_text": "Ctrl-C stops everything",
         "timeout_s": 180.0}
ARGS = ["demo", "--speed", "30", "--devices", "14"]


def test_demo_help_explains_the_options() -> None:
    out = subprocess.run([CITYHUB, "demo", "--help"], capture_output=True, text=True, check=True,
                         env={"COLUMNS": "160", "PATH": ""}).stdout
    for option in ("--scenario", "--speed", "--devices", "--port"):
        assert option in out


def history(hub: RunningHub, at_least: int = 1, timeout_s: float = 60.0) -> int:
    """How many city congestion values the hub holds, once it holds `at_least`."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.get(f"{hub.url}/ngsi-ld/v1/temporal/entities/{CITY_INDEX}",
                           params={"attrs": "congestionIndex", "options": "temporalValues"},
                           headers=hub.service_token("demo-twin"))
        values = answer.json()["congestionIndex"]["values"] if answer.status_code == 200 else []
        if len(values) >= at_least or time.monotonic() > deadline:
            return len(values)
        time.sleep(0.5)


def children(log: str) -> list[int]:
    return sorted({int(pid) for pid in re.findall(r"pid (\d+)", log)})


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_second_run_resumes_from_the_stored_district(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_cityhub(ARGS, data, **READY) as first:  # type: ignore[arg-type]
        first_count = history(first, at_least=2)
        assert first_count >= 2  # the twin publishes every simulated minute, with its token
        anonymous = httpx.get(f"{first.url}/ngsi-ld/v1/entities", params={"type": "Device"})
        assert anonymous.status_code == 401  # authentication is on
    passwords = (data / "demo" / "accounts.json").read_text()
    log = first.log()
    assert first.process.returncode == 0, log  # Ctrl-C stops everything cleanly
    for part in ("identities", "hub", "MQTT broker", "district", "edge agent", "device simulator",
                 "SUMO twin", "operations page"):
        assert f"stopped {part}" in log
    assert "(generated now)" in log
    pids = children(log)
    assert len(pids) == 3  # edge agent, device simulator, twin: each its own process
    assert all(gone(pid) for pid in pids)
    devices_log = (data / "demo" / "logs" / "devices.log").read_text()
    assert "14 registered now" in devices_log

    with running_cityhub(ARGS, data, **READY) as second:  # type: ignore[arg-type]
        assert history(second, at_least=first_count + 1) > first_count
    log = second.log()
    assert second.process.returncode == 0, log
    assert "(reused)" in log
    assert "generated now" not in log
    assert all(gone(pid) for pid in children(log))
    devices_log = (data / "demo" / "logs" / "devices.log").read_text()
    assert "0 registered now, 14 reused" in devices_log
    assert (data / "demo" / "accounts.json").read_text() == passwords  # same people, same
    assert "transport.officer" in log  # the table of demo people to sign in as was printed
