"""Real processes for the edge tests: a hub (`cityhub serve`, authentication on, edge agents
let in with the edge token), edge agents (`cityhub edge`), a private Mosquitto when a test
restarts the broker, and MQTT publishers with QoS 1."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cityhub.cli.common import free_port
from tests.conftest import need_service

BIN = Path(sys.executable).parent


def wait_for(check: Any, timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


EDGE_TOKEN = "edge-test-token"


def steward_headers(store_url: str) -> dict[str, str]:
    """A steward's bearer token from the built-in issuer in the hub's store (made before the
    hub starts: the hub trusts its own issuer's keys)."""
    from cityhub.config import Settings
    from cityhub.governance.datasets import Tier
    from cityhub.governance.identity import PrincipalKind
    from cityhub.governance.issuer import BuiltinIssuer
    from cityhub.store.sql import SqlStore

    settings = Settings(store_url=store_url)
    store = SqlStore.open(store_url)
    try:
        issuer = BuiltinIssuer(store.db, settings.auth_issuer, settings.auth_audience)
        issuer.add_department("bureau")
        issuer.add_account("edge-tests", PrincipalKind.STAFF, "bureau", ("steward",), Tier.CORE)
        return {"Authorization": f"Bearer {issuer.issue('edge-tests')}"}
    finally:
        store.close()


@dataclass
class Hub:
    port: int
    db: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "cityhub"), "serve", "--port", str(self.port), "--log-level",
                 "warning"], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(self.up, 120, "the hub to answer")  # slow only on a loaded machine
        except AssertionError:
            self.stop()
            raise

    def up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def register(self, device: str, kind: str, tenant: str) -> str:
        response = httpx.post(f"{self.url}/devices/v1/devices",
                              headers={"NGSILD-Tenant": tenant, **self.headers},
                              json={"id": device, "type": kind, "owner": "test",
                                    "location": [116.4, 39.9]}, timeout=10)
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token

    def history_counts(self, tenant: str, attr: str) -> dict[str, int]:
        """Rows of `attr`'s history per entity, read from the hub's SQLite file."""
        iri = "https://uri.etsi.org/ngsi-ld/default-context/" + attr
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute("SELECT entity_id, count(*) FROM attr_history WHERE tenant = ? "
                                "AND attr = ? AND deleted = 0 GROUP BY entity_id",
                                (tenant, iri)).fetchall()
        return {r[0]: r[1] for r in rows}

    def dead_letters(self, tenant: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/ingest/v1/dead-letters",
                             headers={"NGSILD-Tenant": tenant, **self.headers},
                             params={"limit": 1000}, timeout=10)
        body: dict[str, Any] = response.json()
        return body


def _hub(tmp_path: Path) -> Iterator[Hub]:
    db = tmp_path / "hub.db"
    env = {**os.environ, "CITYHUB_STORE_URL": f"sqlite:///{db}",
           "CITYHUB_DATA_DIR": str(tmp_path / "data"), "CITYHUB_NOTIFY_WORKERS": "0",
           "CITYHUB_AUTH": "enabled", "CITYHUB_EDGE_TOKEN": EDGE_TOKEN}
    env.pop("CITYHUB_BUS_URL", None)
    running = Hub(free_port("127.0.0.1", 0), db, env, tmp_path / "hub.log",
                  headers=steward_headers(f"sqlite:///{db}"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def own_hub(tmp_path: Path) -> Iterator[Hub]:
    """A hub of the test's own (the test may stop it)."""
    yield from _hub(tmp_path)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub shared by a module's tests (each test uses a tenant of its own)."""
    yield from _hub(tmp_path_factory.mktemp("hub"))


@dataclass
class Agent:
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        before = self._connections()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "cityhub"), "edge", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT)
        # the agent may log its connection before or after edge_started: count them instead
        wait_for(lambda: self._connections() > before, 90, "the agent to connect")

    def _connections(self) -> int:
        if not self.log.exists():
            return 0
        return self.log.read_text(errors="replace").count("event=mqtt_connected")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no clean-up at all
        self.process.wait(5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def write_config(path: Path, *, hub_url: str, tenant: str, port: int = 1883,
                 extra: str = "", transport: str = "http",
                 bus_url: str = "nats://127.0.0.1:4222", forward: str = "raw") -> Path:
    path.write_text(f"""
[mqtt]
host = "127.0.0.1"
port = {port}
client_id = "edge-{uuid.uuid4().hex[:10]}"
topic = "cityhub/{tenant}/+/up"

[hub]
url = "{hub_url}"
token = "{EDGE_TOKEN}"
transport = "{transport}"
bus_url = "{bus_url}"
forward = "{forward}"
batch_size = 2000
retry_max_s = 1.0

[outbox]
path = "outbox.db"

[window]
seconds = 5
{extra}
""")
    return path


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[Any]:
    agents: list[Agent] = []

    def make(config: Path) -> Agent:
        agent = Agent(config, tmp_path / f"agent{len(agents)}.log")
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()


@pytest.fixture
def mosquitto() -> None:
    need_service("Mosquitto", "127.0.0.1", 1883)


@dataclass
class Broker:
    """A private Mosquitto (so that a test may stop it) with the settings docs/edge.md asks of
    an edge broker: a deep queue for persistent sessions while the agent is away."""

    port: int
    conf: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import socket

        self.process = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Broker]:
    if not Path("/usr/sbin/mosquitto").exists():
        need_service("Mosquitto (the /usr/sbin/mosquitto binary)", "127.0.0.1", 1)
    port = free_port("127.0.0.1", 0)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {tmp_path}/\nmax_queued_messages 100000\n"
                    "max_inflight_messages 100\n")
    broker = Broker(port, conf)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@dataclass
class Device:
    tenant: str
    device_id: str
    token: str
    port: int = 1883
    inflight: int = 20  # QoS 1 publishes awaiting the broker's acknowledgement at once
    sent: list[str] = field(default_factory=list)
    acked: set[int] = field(default_factory=set)
    client: mqtt.Client | None = None

    def connect(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"dev-{self.device_id}-{uuid.uuid4().hex[:6]}")
        client.on_publish = lambda _c, _u, mid, _r, _p: self.acked.add(mid)
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(self.inflight)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        self.client = client

    def publish(self, values: dict[str, Any], at: float | None = None) -> None:
        assert self.client is not None
        message_id = f"{self.device_id}-{len(self.sent)}"
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at or time.time()))
        body = {"id": message_id, "key": self.token, "values": values,
                "observedAt": f"{moment}.{len(self.sent) % 1000:03d}Z"}
        info = self.client.publish(f"cityhub/{self.tenant}/{self.device_id}/up",
                                   orjson.dumps(body), qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
        self.sent.append(message_id)

    def close(self) -> None:
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()


def publish_steadily(devices: list[Device], rate: float, duration: float,
                     stop: threading.Event | None = None) -> None:
    """`rate` messages per second in total, round-robin over `devices`, for `duration` s."""
    start, n = time.monotonic(), 0
    while time.monotonic() - start < duration and not (stop and stop.is_set()):
        device = devices[n % len(devices)]
        device.publish({"pm25": float(10 + n % 50)})
        n += 1
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
