"""Edge benchmark: publish-to-local-alert latency through the agent beside a bare MQTT round
trip on the same broker in the same run, and edge-to-hub forwarding throughput beside the hub's
own ingest rate. Prints ratios (goals: alert p99 <= 2x bare p99; forwarding >= 10,000 msg/s).

The alert path is device -> broker -> agent -> broker -> operator: two trips through the broker
with the agent's work between them. The bare round trip has the same shape with a responder that
does nothing but publish back (`--echo`, its own process like the agent), so the ratio is the
agent's own cost. The one-way delivery (publisher -> broker -> subscriber) is printed as well.

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
from cityhub.edge.forwarder import IN_FLIGHT, Forwarder, HttpSender
from cityhub.edge.outbox import Outbox
from cityhub.store import open_store


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def connected(port: int, on_message: object = None) -> mqtt.Client:
    """A started MQTT client with Nagle off (a device, or an operator listening)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
    if on_message is not None:
        client.on_message = on_message  # type: ignore[assignment]
    client.loop_start()
    return client


def agent_config(port: int, workdir: Path, tenant: str, token: str) -> Path:
    """An edge.toml with one device and one threshold rule; no hub listens on :9, so this is
    the alert path alone."""
    registry = workdir / "registry.json"
    registry.write_bytes(orjson.dumps([{"tenant": tenant, "id": "aq", "type":
                                        "AirQualityObserved", "owner": "bench",
                                        "location": [0, 0], "credential": token_digest(token)}]))
    config = workdir / "edge.toml"
    config.write_text(f"""
[mqtt]
port = {port}
client_id = "bench-edge-{os.getpid()}"
topic = "cityhub/{tenant}/+/up"
[hub]
url = "http://127.0.0.1:9"
retry_max_s = 5.0
[outbox]
path = "{workdir / 'outbox.db'}"
[registry]
file = "{registry}"
refresh_s = 3600
[[rules]]
kind = "threshold"
attribute = "pm25"
above = 75
""")
    return config


def round_trips(port: int, samples: int,
                workdir: Path) -> tuple[list[float], list[float], list[float]]:
    """One-way deliveries, bare MQTT round trips and publish -> local alert times, taken in turn
    in one loop (so all see the same load). The agent is `cityhub edge` in its own process, as
    deployed: one inside this process would share its interpreter lock with the measuring
    clients."""
    token, tenant = "bench-token", f"bench{os.getpid()}"
    agent = subprocess.Popen([str(Path(sys.executable).parent / "cityhub"), "edge",  # noqa: S603
                              "--config", str(agent_config(port, workdir, tenant, token)),
                              "--log-level", "error"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    echo, up = f"bench/{os.getpid()}/echo", f"cityhub/{tenant}/aq/up"
    responder = subprocess.Popen([sys.executable, __file__, "--echo",  # noqa: S603
                                  "--broker-port", str(port), "--echo-topic", echo])
    got = threading.Event()
    client = connected(port)
    # A listener per path: on one connection the broker's Nagle (Mosquitto leaves
    # set_tcp_nodelay off) would hold each message until the previous one is acknowledged.
    listener = connected(port, lambda *_: got.set())
    replies = connected(port, lambda *_: got.set())
    alerts = connected(port, lambda *_: got.set())
    listener.subscribe(echo, qos=1)
    replies.subscribe(f"{echo}/reply", qos=1)
    alerts.subscribe(f"cityhub/{tenant}/aq/alert", qos=1)

    def timed(topic: str, payload: bytes, wait_s: float) -> float | None:
        got.clear()
        start = time.perf_counter()
        client.publish(topic, payload, qos=1)
        return (time.perf_counter() - start) * 1000 if got.wait(wait_s) else None

    one_way: list[float] = []
    bare: list[float] = []
    alert: list[float] = []
    payload = b'{"values": {"pm25": 90}}'
    try:
        for n in range(-50, samples):  # the first rounds wait for the agent and responder
            client.publish(up, orjson.dumps({"id": f"low{n}", "key": token,
                                             "values": {"pm25": 10.0}}), qos=1)
            time.sleep(0.01)  # one message at a time, as a device sends them
            took = timed(up, orjson.dumps({"id": f"high{n}", "key": token,
                                          "values": {"pm25": 90.0}}), 5 if n >= 0 else 1)
            trip = timed(f"{echo}/ask", payload, 5 if n >= 0 else 1)
            if n >= 0 and took is not None and trip is not None:
                alert.append(took)
                bare.append(trip)
                took = timed(echo, payload, 5)
                if took is not None:
                    one_way.append(took)
    finally:
        for each in (client, listener, replies, alerts):
            each.loop_stop()
            each.disconnect()
        for process in (agent, responder):
            process.terminate()
            process.wait(30)
    return one_way, bare, alert


def echo_responder(port: int, topic: str) -> None:
    """Publish every message on `topic`/ask back on `topic`/reply and nothing else; as the agent
    sends an alert: QoS 0, written to the socket from the network thread at once."""
    def reply(client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        client.publish(f"{topic}/reply", message.payload, qos=0)
        client.loop_write()

    client = connected(port, reply)
    client.subscribe(f"{topic}/ask", qos=1)
    threading.Event().wait()


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def forwarding_rate(workdir: Path, messages: list[Measurement], devices: int,
                    batch: int) -> tuple[float, float, float]:
    """Messages per second of wall time, and the CPU seconds per 10,000 messages of the edge
    (this process) and of the hub."""
    port = free_port("127.0.0.1", 0)
    env = {**os.environ, "CITYHUB_STORE_URL": f"sqlite:///{workdir / 'hub.db'}",
           "CITYHUB_DATA_DIR": str(workdir / "data"), "CITYHUB_NOTIFY_WORKERS": "0",
           "CITYHUB_AUTH": "disabled"}  # loopback benchmark
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
        outbox.put(("measurement", "", m.to_json()) for m in messages)
        # made once as the agent starts (its TLS set-up ~20 ms)
        sender = HttpSender(url, None, f"bench:{outbox.name}")
        forwarder = Forwarder(outbox, lambda: sender, batch, 1.0)
        start, edge_cpu, hub_cpu = time.perf_counter(), time.process_time(), cpu_seconds(hub.pid)
        forwarder.start()  # the agent's own forwarding thread, as deployed
        while forwarder.forwarded < len(messages):
            time.sleep(0.005)
        rate = len(messages) / (time.perf_counter() - start)
        per = 10_000 / len(messages)
        edge_cpu = (time.process_time() - edge_cpu) * per
        hub_cpu = (cpu_seconds(hub.pid) - hub_cpu) * per
        forwarder.stop()
        outbox.close()
        return rate, edge_cpu, hub_cpu
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
    parser.add_argument("--only", choices=("latency", "throughput"), default=None)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--echo-topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo:
        echo_responder(args.broker_port, args.echo_topic)
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.only != "throughput":
            latency(args.broker_port, args.samples, workdir)
        if args.only != "latency":
            throughput(workdir, args.messages, args.devices, args.batch)
        print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f} "
              "(figures are noisy on a shared machine)")


def latency(port: int, samples: int, workdir: Path) -> None:
    one_way, bare, alert = round_trips(port, samples, workdir)
    print(f"one-way MQTT delivery  p50 {percentile(one_way, .5):7.2f} ms  "
          f"p99 {percentile(one_way, .99):7.2f} ms  (n={len(one_way)})")
    print(f"bare MQTT round trip   p50 {percentile(bare, .5):7.2f} ms  "
          f"p99 {percentile(bare, .99):7.2f} ms  (n={len(bare)})")
    print(f"publish -> local alert p50 {percentile(alert, .5):7.2f} ms  "
          f"p99 {percentile(alert, .99):7.2f} ms  (n={len(alert)})")
    print(f"alert p99 / bare p99 = {percentile(alert, .99) / percentile(bare, .99):.2f} "
          "(goal <= 2)")


def throughput(workdir: Path, count: int, devices: int, batch_size: int) -> None:
    batch = measurements(count, devices)
    direct = hub_ingest_rate(workdir, batch, devices, batch_size)
    forwarded, edge_cpu, hub_cpu = forwarding_rate(workdir, batch, devices, batch_size)
    print(f"hub ingest (in-process) {direct:9.0f} msg/s")
    print(f"edge -> hub forwarding  {forwarded:9.0f} msg/s  (goal >= 10,000); "
          f"ratio to hub ingest {forwarded / direct:.2f}")
    print(f"CPU per 10,000 forwarded messages: edge {edge_cpu:.2f} s, hub {hub_cpu:.2f} s "
          f"(on 2 idle cores: {10_000 / (edge_cpu + hub_cpu):.0f} msg/s with one batch in "
          f"flight, up to {10_000 / max(edge_cpu, hub_cpu):.0f} with {IN_FLIGHT})")


if __name__ == "__main__":
    main()
