"""The `cityhub` command as a user runs it: a real process, real ports, readable errors."""

from __future__ import annotations

import contextlib
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


def _workers(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(c) for c in children
            if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
            and b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]


def _connections_held(pid: int, port: int) -> int:
    """How many established TCP connections to `port` process `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    held = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port and fields[9] in inodes:
            held += 1
    return held


def test_workers_share_the_connections_of_clients_that_connect_at_once(tmp_path: Path) -> None:
    """Each worker listens on a socket of its own (SO_REUSEPORT): keep-alive clients that
    connect together are spread by the kernel, not all taken by the worker that woke first
    (uvicorn's shared socket gave one worker all 16 connections of a benchmark)."""
    import http.client

    port = free_port("127.0.0.1", 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYHUB_")}
    env["CITYHUB_AUTH"] = "disabled"
    process = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "2"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(32)]
    try:
        wait_for_health(url, process, seconds=120)
        ready, deadline = 0, time.monotonic() + 120
        while ready < 32:  # fresh connections land on either worker: both answer
            assert time.monotonic() < deadline, "a worker never answered"
            try:
                httpx.get(f"{url}/health", timeout=2)
                ready += 1
            except httpx.TransportError:
                ready = 0
        for client in clients:  # all connected before any is accepted, as wrk does
            client.connect()
        for client in clients:
            client.request("GET", "/health")
            assert client.getresponse().read()
        held = [_connections_held(w, port) for w in _workers(process.pid)]
        assert sum(held) == 32, held
        assert min(held) >= 4, held
    finally:
        for client in clients:
            client.close()
        process.terminate()
        process.communicate(timeout=30)
    assert process.returncode == 0


def test_workers_refuse_a_port_in_use_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITYHUB_")}
        done = subprocess.run([*CLI, "serve", "--port", str(port), "--workers", "2"],
                              cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_workers_that_cannot_start_end_the_command_instead_of_restarting_for_ever(
        tmp_path: Path) -> None:
    """A set-up that kills every worker at start (here a policy file that does not parse) is
    not restarted for ever: the supervisor gives up after a few early deaths and says so."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "broken.cedar").write_text("this is not cedar (")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYHUB_")}
    env.update(CITYHUB_AUTH="disabled", CITYHUB_POLICY_DIR=str(policies))
    port = free_port("127.0.0.1", 0)
    done = subprocess.run([*CLI, "serve", "--port", str(port), "--workers", "2"],
                          cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert done.returncode == 1
    assert "worker processes kept stopping soon after their start" in done.stderr.decode()


def test_a_port_out_of_range_is_refused_before_anything_starts(tmp_path: Path) -> None:
    for command in (["serve"], ["demo"], ["edge", "broker"]):
        result = subprocess.run([*CLI, *command, "--port", "80000"], cwd=tmp_path,
                                capture_output=True, timeout=60, check=False)
        err = result.stderr.decode()
        assert result.returncode == 2, (command, err)
        assert "Invalid value for '--port': Input should be less than or equal to 65535" \
            in " ".join(err.split()), err
        assert "Traceback" not in err
        assert not (tmp_path / ".cityhub").exists()  # nothing was started or created
