"""The operations page across hub processes (issue 6, point 2, on the scale path): two hubs
(`cityhub serve`), or the two workers of `cityhub serve --workers 2`, on one PostgreSQL with
CITYHUB_BUS_URL on NATS JetStream. A write through one process reaches the other's in-memory
snapshot (/ops/view) and its event stream (/ops/events), through the broadcast listener on the
bus; each test uses a bus namespace of its own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cityhub.api.app import create_app
from cityhub.api.ingestion import change_json, change_subject
from cityhub.api.routers import ops
from cityhub.cli.common import free_port
from cityhub.config import Settings
from cityhub.store.port import Change
from cityhub.web import sample_district as sd
from tests.bus.namespaces import NATS, drop_namespace, new_namespace
from tests.conftest import pg_schema
from tests.edge.conftest import BIN, Hub, wait_for

two_processes = [pytest.mark.postgres, pytest.mark.slow]
TIMEOUT_S = 30.0  # generous: the machine is shared; the page's goal (2 s) is for bench/page.py


class WorkersHub(Hub):
    """`cityhub serve --workers 2`: two hub processes behind one port."""

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "cityhub"), "serve", "--port", str(self.port), "--workers", "2",
                 "--log-level", "warning"], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        wait_for(self.up, 120, "the workers to answer")  # each imports the whole hub


@contextmanager
def hubs(tmp_path: Path, kinds: list[type[Hub]]) -> Iterator[list[Hub]]:
    """Hub processes on one PostgreSQL schema and one bus namespace of their own."""
    name = new_namespace()
    started: list[Hub] = []
    try:
        with pg_schema("ops") as store_url:
            try:
                for n, kind in enumerate(kinds):  # one after the other: the first makes tables
                    env = {**os.environ, "CITYHUB_STORE_URL": store_url,
                           "CITYHUB_BUS_URL": f"{NATS}/{name}", "CITYHUB_AUTH": "disabled",
                           "CITYHUB_DATA_DIR": str(tmp_path / str(n)),
                           "CITYHUB_NOTIFY_WORKERS": "0"}
                    started.append(kind(free_port("127.0.0.1", 0), tmp_path / "unused.db", env,
                                        tmp_path / f"hub-{n}.log"))
                    started[-1].start()
                yield started
            finally:
                for hub in started:
                    hub.stop()
    finally:
        asyncio.run(drop_namespace(name))


@pytest.fixture
def two_hubs(tmp_path: Path) -> Iterator[tuple[Hub, Hub]]:
    with hubs(tmp_path, [Hub, Hub]) as (a, b):
        yield a, b


class Stream:
    """/ops/events of one hub, read in a thread: the `rows` events' bodies as they arrive."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.hello = threading.Event()
        self.rows: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.hello.wait(TIMEOUT_S), "the stream did not open"

    def _read(self) -> None:
        event = ""
        try:
            with httpx.stream("GET", f"{self.hub.url}/ops/events",
                              timeout=httpx.Timeout(10, read=None)) as response:
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                        if event == "hello":
                            self.hello.set()
                    elif line.startswith("data: ") and event == "rows":
                        self.rows.append(orjson.loads(line.removeprefix("data: ")))
        except httpx.HTTPError:
            return  # the hub stopped (at the end of the test) or the stream broke: no more rows

    def road_levels(self) -> dict[str, Any]:
        """Every road level the stream carried, the latest per road."""
        out: dict[str, Any] = {}
        for body in list(self.rows):
            roads = body["layers"].get("roads", {}).get("set", {"id": [], "level": []})
            out.update(zip(roads["id"], roads["level"], strict=True))
        return out

    def sensor_ids(self) -> set[str]:
        return {i for body in list(self.rows)
                for i in body["layers"].get("sensors", {}).get("set", {}).get("id", [])}


def view(hub: Hub) -> dict[str, Any]:
    """/ops/view on a new connection (with several workers: any of them)."""
    response = httpx.get(f"{hub.url}/ops/view", timeout=TIMEOUT_S)
    assert response.status_code == 200, response.text
    layers: dict[str, Any] = response.json()["layers"]
    return layers


def road_level(layers: dict[str, Any], road: str) -> Any:
    roads = layers["roads"]
    return roads["level"][roads["id"].index(road)] if road in roads["id"] else None


@pytest.mark.postgres
@pytest.mark.slow
def test_a_write_through_one_hub_reaches_the_page_of_the_other(
        two_hubs: tuple[Hub, Hub]) -> None:
    a, b = two_hubs
    state = sd.build(size=2, sensors=4)
    answer = httpx.post(f"{a.url}/ngsi-ld/v1/entityOperations/upsert", json=sd.entities(state),
                        timeout=TIMEOUT_S)
    assert answer.status_code in (201, 204), answer.text
    road = state.roads[0].id
    # B loads its snapshot now, and from then on only hears of changes
    wait_for(lambda: road_level(view(b), road) not in (None, "severe"), TIMEOUT_S,
             "B's first view")
    streams = [Stream(b), Stream(a)]  # they end when the hubs stop
    level = {"congestionLevel": {"type": "Property", "value": "severe"}}
    answer = httpx.patch(f"{a.url}/ngsi-ld/v1/entities/{road}/attrs", json=level,
                         timeout=TIMEOUT_S)
    assert answer.status_code == 204, answer.text
    sensor = sd.sensor_entity(sorted(state.sensors)[0], state, sd.utc_stamp())
    sensor["id"] = "urn:ngsi-ld:Device:demo:added-through-a"
    answer = httpx.post(f"{a.url}/ngsi-ld/v1/entities", json=sensor, timeout=TIMEOUT_S)
    assert answer.status_code == 201, answer.text
    for stream in streams:  # B's stream, and the writer's own (it hears the bus too)
        wait_for(lambda s=stream: s.road_levels().get(road) == "severe"  # type: ignore[misc]
                 and sensor["id"] in s.sensor_ids(), TIMEOUT_S,
                 f"the change on {stream.hub.url}/ops/events")
    layers = view(b)
    assert road_level(layers, road) == "severe"
    assert sensor["id"] in layers["sensors"]["id"]
    assert len(layers["roads"]["id"]) == len(state.roads)


@pytest.mark.postgres
@pytest.mark.slow
def test_with_two_workers_every_stream_and_view_follows_every_write(tmp_path: Path) -> None:
    """`cityhub serve --workers 2` on NATS: a new connection lands on either worker, so a
    write through one must reach every stream and every first view."""
    with hubs(tmp_path, [WorkersHub]) as (hub,):
        state = sd.build(size=2, sensors=4)
        answer = httpx.post(f"{hub.url}/ngsi-ld/v1/entityOperations/upsert",
                            json=sd.entities(state), timeout=TIMEOUT_S)
        assert answer.status_code in (201, 204), answer.text
        road = state.roads[0].id
        for _ in range(6):  # load the snapshot in both workers (the kernel spreads connections)
            assert road_level(view(hub), road) not in (None, "severe")
        streams = [Stream(hub) for _ in range(6)]
        for n, level in enumerate(("moderate", "severe")):  # through either worker
            answer = httpx.patch(f"{hub.url}/ngsi-ld/v1/entities/{road}/attrs", timeout=TIMEOUT_S,
                                 json={"congestionLevel": {"type": "Property", "value": level}})
            assert answer.status_code == 204, f"{n}: {answer.text}"
        for stream in streams:
            wait_for(lambda s=stream: s.road_levels().get(road) == "severe",  # type: ignore[misc]
                     TIMEOUT_S, "the change on every stream")
        assert {road_level(view(hub), road) for _ in range(6)} == {"severe"}


async def test_a_change_published_late_does_not_undo_a_newer_one(tmp_path: Path) -> None:
    """A relay that retries a failed batch can publish an entity's older change after a newer
    one; the page keeps the newer state (the outbox order in the message id decides)."""
    name = new_namespace()
    app = create_app(Settings(data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path}/h.db",
                              bus_url=f"{NATS}/{name}", public_url="http://testserver",
                              auth="disabled", notify_workers=0))
    try:
        async with app.router.lifespan_context(app):
            state = sd.build(size=2, sensors=4)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://testserver") as http:
                answer = await http.post("/ngsi-ld/v1/entityOperations/upsert",
                                         json=sd.entities(state))
            assert answer.status_code in (201, 204), answer.text
            snapshot = ops.snapshot_of(app)
            await asyncio.to_thread(snapshot.copy, "")  # loaded from the store
            iri = snapshot.terms.expand_term("congestionLevel")

            async def publish(road: str, level: str, order: int) -> None:
                entity = app.state.store.get("", road)
                entity["attrs"][iri][0]["value"] = level
                change = Change("", road, "update", (iri,), entity, None, "2026-01-01T00:00:00Z")
                await app.state.bus.publish(change_subject(change),
                                            orjson.dumps(change_json(change)),
                                            f"{order}|{road}")

            first, second = state.roads[0].id, state.roads[1].id
            await publish(first, "newer", 10_001)
            await publish(first, "older", 10_000)  # late
            await publish(second, "marker", 10_002)  # heard after the late one

            def level(road: str) -> Any:
                row = snapshot.rows_of("", "roads", [road])[road]
                return row[3] if row else None

            await asyncio.to_thread(wait_for, lambda: level(second) == "marker", TIMEOUT_S,
                                    "the marker change")
            assert level(first) == "newer"
    finally:
        await drop_namespace(name)
