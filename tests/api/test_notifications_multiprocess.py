"""Exactly once across hub processes: two real hub processes share one PostgreSQL schema, one
subscription watches four vehicles, and 200 updates go alternately to the two processes. The
receiver must get every change once: none missing, none twice, each vehicle's in order.

The processes run `cityhub serve` when app.py starts the notifier itself; until then they run
`serve_wired` below, which adds the same wiring around the app (see cityhub.api.notifier).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.test_subscriptions import Receiver

ROOT = Path(__file__).resolve().parents[2]
BASE = "/ngsi-ld/v1"
VEHICLES = 4
UPDATES = 200

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def serve_wired(port: int) -> None:
    """Run the hub like `cityhub serve`, with the subscription wiring app.py may still lack."""
    import uvicorn

    from cityhub.api import notifier
    from cityhub.api.app import create_app
    from cityhub.config import Settings

    app = create_app(Settings())
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(wired: FastAPI) -> AsyncIterator[None]:
        async with inner(wired):
            if getattr(wired.state, "subscriptions", None) is None:
                async with notifier.running(wired):
                    yield
            else:
                yield

    app.router.lifespan_context = lifespan
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def app_starts_the_notifier() -> bool:
    from cityhub.api import app as app_module

    return "notifier" in inspect.getsource(app_module)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class HubProcess:
    def __init__(self, port: int, env: dict[str, str], log: Path) -> None:
        if app_starts_the_notifier():
            code = "from cityhub.cli import app; app()"
            args = ["serve", "--port", str(port), "--log-level", "warning"]
        else:
            code = f"from tests.api.test_notifications_multiprocess import serve_wired; " \
                   f"serve_wired({port})"
            args = []
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"hub exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"hub not ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


@pytest.fixture
def hubs(pg_url: str, tmp_path: Path) -> Iterator[list[HubProcess]]:
    started: list[HubProcess] = []
    try:
        for name in ("a", "b"):  # one after the other: SqlStore's DDL is not safe in parallel
            env = {**os.environ, "CITYHUB_STORE_URL": pg_url, "CITYHUB_AUTH": "disabled",
                   "CITYHUB_DATA_DIR": str(tmp_path / name),
                   "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
            started.append(HubProcess(free_port(), env, tmp_path / f"{name}.log"))
            started[-1].wait_ready()
        yield started
    finally:
        for hub in started:
            hub.stop()


def speed_of(item: dict[str, Any]) -> Any:
    return item["speed"]["value"]


async def test_each_change_is_notified_exactly_once_across_processes(
    hubs: list[HubProcess], receiver: Receiver
) -> None:
    a, b = hubs
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.post(f"{a.url}{BASE}/subscriptions", json={
            "id": "urn:ngsi-ld:Subscription:multi", "type": "Subscription",
            "entities": [{"type": "Vehicle"}], "watchedAttributes": ["speed"],
            "notification": {"endpoint": {"uri": receiver.url}},
        })
        assert response.status_code == 201, response.text
        for v in range(VEHICLES):
            response = await http.post(f"{(a, b)[v % 2].url}{BASE}/entities", json={
                "id": f"urn:ngsi-ld:Vehicle:{v}", "type": "Vehicle",
                "speed": {"type": "Property", "value": -1 - v}})
            assert response.status_code == 201, response.text

        async def drive(vehicle: int) -> list[int]:
            """Vehicle `vehicle` gets every VEHICLES-th update, alternating between hubs."""
            sent = []
            for i in range(vehicle, UPDATES, VEHICLES):
                hub = (a, b)[(i // VEHICLES) % 2]
                answer = await http.patch(
                    f"{hub.url}{BASE}/entities/urn:ngsi-ld:Vehicle:{vehicle}/attrs",
                    json={"speed": {"type": "Property", "value": i}})
                assert answer.status_code == 204, answer.text
                sent.append(i)
            return sent

        sent = await asyncio.gather(*(drive(v) for v in range(VEHICLES)))
        total = UPDATES + VEHICLES
        got = await receiver.until(lambda r: sum(len(x.body["data"]) for x in r) >= total)
        await asyncio.sleep(1.0)  # room for a duplicate to show up, should there be one
        got = receiver.wait_for(lambda r: True)

        ids = [r.body["id"] for r in got]
        assert len(ids) == len(set(ids)) == total, "a notification arrived twice"
        items = [item for r in got for item in r.body["data"]]
        updates = sorted(speed_of(item) for item in items if speed_of(item) >= 0)
        assert updates == list(range(UPDATES)), "changes missing or duplicated"
        for v in range(VEHICLES):
            seen = [speed_of(item) for item in items if item["id"] == f"urn:ngsi-ld:Vehicle:{v}"]
            assert seen == [-1 - v, *sent[v]], f"vehicle {v} out of order"

        deadline = time.monotonic() + 20
        while True:
            shown = (await http.get(f"{b.url}{BASE}/subscriptions/"
                                    "urn:ngsi-ld:Subscription:multi")).json()["notification"]
            if shown["timesSent"] == total or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert (shown["timesSent"], shown["timesFailed"], shown["status"]) == (total, 0, "ok")
