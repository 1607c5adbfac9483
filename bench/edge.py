"""Edge benchmark: publish-to-local-alert latency through the agent beside a bare MQTT round
trip on the same broker in the same run, and edge-to-hub forwarding throughput beside the hub's
own ingest rate. Prints ratios (goals: alert p99 <= 2x bare p99; forwarding >= 10,000 msg/s).

    python bench/edge.py [--broker-port 1883] [--samples 500] [--messages 20000]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityhub.cli.common import free_port
from cityhub.devices.credentials import token_digest
from cityhub.devices.hub import DeviceHub
from cityhub.devices.messages import Measurement
from cityhub.edge.agent import EdgeAgent
from cityhub.edge.config import config_from
from cityhub.edge.forwarder import Forwarder, HttpSender
from cityhub.edge.outbox import Outbox
from cityhub.store import open_store


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pair(port: int, on_message: object) -> tuple[mqtt.Client, mqtt.Client]:
    """A publisher and a separate subscriber (as a device and an operator would be)."""
    clients = []
    for _ in range(2):
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", port)
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
        client.loop_start()
        clients.append(client)
    clients[1].on_message = on_message  # type: ignore[assignment]
    return clients[0], clients[1]


def bare_round_trip(port: int, samples: int) -> list[float]:
    got = threading.Event()
    client, listener = pair(port, lambda *_: got.set())
    topic = f"bench/{os.getpid()}/echo"
    listener.subscribe(topic, qos=1)
    time.sleep(0.3)
    out = []
    for _ in range(samples):
        got.clear()
        start = time.perf_counter()
        client.publish(topic, b'{"values": {"pm25": 90}}', qos=1)
        if got.wait(5):
            out.append((time.perf_counter() - start) * 1000)
    for each in (client, listener):
        each.loop_stop()
        each.disconnect()
    return out


def alert_latency(port: int, samples: int, workdir: Path) -> list[float]:
    token, tenant = "bench-token", f"bench{os.getpid()}"
    registry = workdir / "registry.json"
    registry.write_bytes(orjson.dumps([{"tenant": tenant, "id": "aq", "type":
                                        "AirQualityObserved", "owner": "bench",
                                        "location": [0, 0], "credential": token_digest(token)}]))
    config = config_from({
        "mqtt": {"port": port, "client_id": f"bench-edge-{os.getpid()}",
                 "topic": f"cityhub/{tenant}/+/up"},
        "hub": {"url": "http://127.0.0.1:9", "retry_max_s": 5.0},
        "outbox": {"path": str(workdir / "outbox.db")},
        "registry": {"file": str(registry), "refresh_s": 3600},
        "rules": [{"kind": "threshold", "attribute": "pm25", "above": 75}],
    })
    agent = EdgeAgent(config)  # no hub listens on :9: the alert path alone
    agent.registry.hub_url = None
    agent.start()
    agent.connected.wait(10)
    got = threading.Event()
    client, listener = pair(port, lambda *_: got.set())
    listener.subscribe(f"cityhub/{tenant}/aq/alert", qos=1)
    time.sleep(0.3)
    out = []
    for n in range(samples):
        client.publish(f"cityhub/{tenant}/aq/up", orjson.dumps(
            {"id": f"low{n}", "key": token, "values": {"pm25": 10.0}}), qos=1)
        time.sleep(0.01)  # one message at a time, as a device sends them
        got.clear()
        start = time.perf_counter()
        client.publish(f"cityhub/{tenant}/aq/up", orjson.dumps(
            {"id": f"high{n}", "key": token, "values": {"pm25": 90.0}}), qos=1)
        if got.wait(5):
            out.append((time.perf_counter() - start) * 1000)
    for each in (client, listener):
        each.loop_stop()
        each.disconnect()
    agent.stop()
    return out


def measurements(count: int, devices: int) -> list[Measurement]:
    base = time.time() - 3600
    return [Measurement("", f"d{n % devices}", f"m{n}",
                        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + n // devices))
                        + f".{n % 1000:03d}Z", {"pm25": float(n % 90)}) for n in range(count)]


def register_all(url: str | None, hub: DeviceHub | None, devices: int) -> None:
    for n in range(devices):
        if hub is not None:
            hub.register("", f"d{n}", "AirQualityObserved", "bench", 0.0, 0.0)
        else:
            httpx.post(f"{url}/devices/v1/devices", json={
                "id": f"d{n}", "type": "AirQualityObserved", "owner": "bench",
                "location": [0, 0]}, timeout=30).raise_for_status()


def hub_ingest_rate(workdir: Path, messages: list[Measurement], devices: int,
                    batch: int) -> float:
    store = open_store(f"sqlite:///{workdir / 'direct.db'}")
    hub = DeviceHub(store)
    register_all(None, hub, devices)
    start = time.perf_counter()
    for i in range(0, len(messages), batch):
        hub.ingest("", messages[i:i + batch], "bench")
    rate = len(messages) / (time.perf_counter() - start)
    store.close()
    return rate


def forwarding_rate(workdir: Path, messages: list[Measurement], devices: int,
                    batch: int) -> float:
    port = free_port("127.0.0.1", 0)
    env = {**os.environ, "CITYHUB_STORE_URL": f"sqlite:///{workdir / 'hub.db'}",
           "CITYHUB_DATA_DIR": str(workdir / "data"), "CITYHUB_NOTIFY_WORKERS": "0"}
    hub = subprocess.Popen([str(Path(sys.executable).parent / "cityhub"), "serve", "--port",  # noqa: S603
                            str(port), "--log-level", "warning"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        register_all(url, None, devices)
        outbox = Outbox(workdir / "fwd.db")
        outbox.put(("measurement", "", m.to_json()) for m in messages)  # type: ignore[misc]
        forwarder = Forwarder(outbox, lambda: HttpSender(url, None), batch, 1.0)
        sender = HttpSender(url, None)
        start = time.perf_counter()
        while outbox.size():
            if forwarder.forward_once(sender) is None:
                time.sleep(0.1)
        rate = len(messages) / (time.perf_counter() - start)
        sender.close()
        return rate
    finally:
        hub.terminate()
        hub.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker-port", type=int, default=1883)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bare = bare_round_trip(args.broker_port, args.samples)
        alert = alert_latency(args.broker_port, args.samples, workdir)
        print(f"bare MQTT round trip   p50 {percentile(bare, .5):7.2f} ms  "
              f"p99 {percentile(bare, .99):7.2f} ms  (n={len(bare)})")
        print(f"publish -> local alert p50 {percentile(alert, .5):7.2f} ms  "
              f"p99 {percentile(alert, .99):7.2f} ms  (n={len(alert)})")
        print(f"alert p99 / bare p99 = {percentile(alert, .99) / percentile(bare, .99):.2f} "
              "(goal <= 2)")
        batch = measurements(args.messages, args.devices)
        direct = hub_ingest_rate(workdir, batch, args.devices, args.batch)
        forwarded = forwarding_rate(workdir, batch, args.devices, args.batch)
        print(f"hub ingest (in-process) {direct:9.0f} msg/s")
        print(f"edge -> hub forwarding  {forwarded:9.0f} msg/s  (goal >= 10,000); "
              f"ratio to hub ingest {forwarded / direct:.2f}")
        print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f} "
              "(figures are noisy on a shared machine)")


if __name__ == "__main__":
    main()
