"""The `cityhub` command as a user runs it: a real process, real ports, readable errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cityhub.cli import free_port

CLI = [sys.executable, "-c", "from cityhub.cli import app; app()"]


def wait_for_health(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not become healthy")


def test_serve_answers_health_and_stores_in_working_dir(tmp_path: Path) -> None:
    port = free_port("127.0.0.1", 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYHUB_")}
    env["CITYHUB_AUTH"] = "disabled"  # loopback hub, anonymous clients
    process = subprocess.Popen([*CLI, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process)
        created = httpx.post(f"{url}/ngsi-ld/v1/entities",
                             json={"id": "urn:ngsi-ld:T:1", "type": "T", "n": 1})
        assert created.status_code == 201
        assert (tmp_path / ".cityhub" / "cityhub.db").exists()
        assert httpx.get(f"{url}/docs").status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_bad_setting_is_one_readable_line(tmp_path: Path) -> None:
    env = {**os.environ, "CITYHUB_MAX_LIMIT": "lots"}
    result = subprocess.run([*CLI, "serve"], cwd=tmp_path, env=env, capture_output=True,
                            timeout=60, check=False)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "max_limit" in err
    assert "Traceback" not in err


def test_unreachable_store_is_one_readable_line(tmp_path: Path) -> None:
    port = free_port("127.0.0.1", 0)
    env = {**os.environ, "CITYHUB_STORE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = subprocess.run([*CLI, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                            capture_output=True, timeout=90, check=False)
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "store" in err.lower()
    assert "Traceback" not in err


def test_free_port_moves_off_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert free_port("127.0.0.1", busy) != busy


def test_several_workers_share_one_store(tmp_path: Path) -> None:
    port = free_port("127.0.0.1", 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYHUB_")}
    env["CITYHUB_AUTH"] = "disabled"  # loopback hub, anonymous clients
    process = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "2"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/ngsi-ld/v1/entities"
        # Each worker imports the whole hub: on a busy 2-core machine that took 30 s.
        wait_for_health(f"http://127.0.0.1:{port}", process, seconds=120)
        # New connections spread over both processes; every write must be seen by every read.
        for n in range(40):
            with httpx.Client() as fresh:
                created = fresh.post(url, json={"id": f"urn:ngsi-ld:T:{n}", "type": "T", "n": n})
                assert created.status_code == 201, created.text
        with httpx.Client() as fresh:
            listed = fresh.get(url, params={"type": "T", "count": "true", "limit": 0})
        assert listed.headers["NGSILD-Results-Count"] == "40"
    finally:
        process.terminate()
        process.communicate(timeout=20)
