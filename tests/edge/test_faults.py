"""Faults against real processes: the agent killed with SIGKILL mid-stream, a broker restart,
and 10,000 hostile payloads."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.edge.conftest import Broker, Device, Hub, publish_steadily, wait_for, write_config

AQ = "urn:ngsi-ld:AirQualityObserved:test:"


def test_kill_9_of_the_agent_loses_nothing_acknowledged(
        private_broker: Broker, hub: Hub, tenant: str, tmp_path: Path,
        agent_factory: Any) -> None:
    """Fault (b): SIGKILL mid-stream and a restart; every message the broker acknowledged to a
    device reaches the hub's history exactly once."""
    port = private_broker.port
    devices = [Device(tenant, f"aq-{n}", hub.register(f"aq-{n}", "AirQualityObserved", tenant),
                      port=port) for n in range(4)]
    config = write_config(tmp_path / "edge.toml", hub_url=hub.url, tenant=tenant, port=port)
    first = agent_factory(config)
    first.start()
    for device in devices:
        device.connect()
    publisher = threading.Thread(target=publish_steadily, args=(devices, 400.0, 6.0))
    publisher.start()
    try:
        time.sleep(2.0)
        first.kill()
        time.sleep(1.0)
        agent_factory(config).start()  # same client id and outbox: the session resumes
        publisher.join()
        wait_for(lambda: all(len(d.acked) == len(d.sent) for d in devices), 10,
                 "the broker to acknowledge every publish")
        expected = {AQ + d.device_id: len(d.sent) for d in devices}
        wait_for(lambda: hub.history_counts(tenant, "pm25") == expected, 30,
                 "every acknowledged message in the history", every=0.3)
    finally:
        publisher.join()
        for device in devices:
            device.close()
    assert sum(expected.values()) >= 2000


def test_agent_reconnects_after_a_broker_restart(
        private_broker: Broker, hub: Hub, tenant: str, tmp_path: Path,
        agent_factory: Any) -> None:
    """Fault (c): the broker is stopped and started again; the agent reconnects by itself."""
    port = private_broker.port
    token = hub.register("aq-1", "AirQualityObserved", tenant)
    agent = agent_factory(write_config(tmp_path / "edge.toml", hub_url=hub.url, tenant=tenant,
                                       port=port))
    agent.start()
    device = Device(tenant, "aq-1", token, port=port)
    device.connect()
    device.publish({"pm25": 1.0})
    wait_for(lambda: hub.history_counts(tenant, "pm25").get(AQ + "aq-1") == 1, 15,
             "the first message")
    device.close()
    private_broker.stop()
    wait_for(lambda: "event=mqtt_disconnected" in agent.log.read_text(), 10,
             "the agent to notice")
    private_broker.start()
    wait_for(lambda: agent.log.read_text().count("event=mqtt_connected") >= 2, 20,
             "the agent to reconnect by itself")
    device = Device(tenant, "aq-1", token, port=port)
    device.sent = ["aq-1-0"]  # keep message ids unique
    device.connect()
    device.publish({"pm25": 2.0})
    wait_for(lambda: hub.history_counts(tenant, "pm25").get(AQ + "aq-1") == 2, 15,
             "the message after the restart")
    device.close()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)
_envelopes = st.fixed_dictionaries(
    {"values": st.dictionaries(st.sampled_from(["pm25", "no2", "LAeq", "colour", ""]),
                               _json_values, max_size=3)},
    optional={"key": st.text(max_size=40), "id": _json_values,
              "observedAt": st.text(max_size=30)})
_hostile = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    _json_values.map(lambda v: json.dumps(v).encode()),
    _envelopes.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 20).map(lambda n: b"{" * (500 * n)),  # deep nesting
)
_oversized = st.integers(65, 80).map(lambda n: b"x" * (1024 * n))  # larger than any device sends
# One example is a burst of hostile payloads, each on the real device's topic or an unknown one,
# with at most one oversized payload (they cost the broker most and prove the same each time).
_bursts = st.tuples(st.lists(st.tuples(_hostile, st.integers(0, 1)), min_size=1, max_size=8),
                    st.lists(_oversized, max_size=1), st.integers(0, 2**64))
HOSTILE_TOTAL = 10_000
MUTANTS = 9  # cheap fuzzed variants of each payload hypothesis draws


def _mutants(payload: bytes, other: bytes, rng: random.Random) -> list[bytes]:
    """Byte-level fuzz of a drawn payload: truncated, bit-flipped, spliced, padded, doubled."""
    out = []
    for n in range(MUTANTS):
        data = bytearray(payload[:4096] or b"{")
        cut = rng.randrange(len(data) + 1)
        match n % 5:
            case 0:
                data = data[:cut]
            case 1:
                for _ in range(rng.randint(1, 4)):
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            case 2:
                data = data[:cut] + other[:200] + data[cut:]
            case 3:
                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
            case _:
                data = data + data
        out.append(bytes(data))
    return out


def _hostile_payloads(total: int) -> list[tuple[bytes, int]]:
    """At least `total` (payload, topic) pairs: drawn by hypothesis in bursts, each drawn
    payload followed by its byte-level mutants (drawing alone costs ~6 ms a payload)."""
    drawn: list[tuple[bytes, int]] = []

    @settings(max_examples=max(1, total // (4 * (MUTANTS + 1))), deadline=None,
              database=None, suppress_health_check=list(HealthCheck))
    @given(burst=_bursts)
    def draw(burst: tuple[list[tuple[bytes, int]], list[bytes], int]) -> None:
        pairs, oversized, seed = burst
        rng = random.Random(seed)  # the mutations are seeded by the example
        drawn.extend((payload, 0) for payload in oversized)
        for payload, which in pairs:
            drawn.append((payload, which))
            other = pairs[rng.randrange(len(pairs))][0]
            drawn.extend((mutant, rng.randint(0, 1)) for mutant in _mutants(payload, other, rng))

    while len(drawn) < total:
        draw()
    return drawn


@pytest.mark.slow
def test_ten_thousand_hostile_payloads_are_dead_lettered(
        private_broker: Broker, hub: Hub, tenant: str, tmp_path: Path,
        agent_factory: Any) -> None:
    """Fault (d): 10,000 fuzzed payloads on a real device's topic (without its token, or
    broken) and on an unknown device's, published in bulk at QoS 1: every one dead-lettered at
    the hub, and the agent still serves. The broker is configured as docs/edge.md asks (a deep
    queue: a stock Mosquitto drops QoS 1 messages beyond 1,000 queued for a slower reader)."""
    port = private_broker.port
    token = hub.register("aq-1", "AirQualityObserved", tenant)
    agent = agent_factory(write_config(tmp_path / "edge.toml", hub_url=hub.url, tenant=tenant,
                                       port=port))
    agent.start()
    device = Device(tenant, "aq-1", token, port=port, inflight=1000)
    device.connect()
    assert device.client is not None
    topics = [f"cityhub/{tenant}/aq-1/up", f"cityhub/{tenant}/nobody/up"]
    payloads = _hostile_payloads(HOSTILE_TOTAL)
    try:
        mids = {device.client.publish(topics[which], payload, qos=1).mid
                for payload, which in payloads}
        wait_for(lambda: mids <= device.acked, 60, "the broker to acknowledge every publish",
                 every=0.2)
        wait_for(lambda: hub.dead_letters(tenant)["total"] >= len(payloads), 120,
                 "every hostile payload dead-lettered", every=0.5)
        assert hub.dead_letters(tenant)["total"] == len(payloads) >= HOSTILE_TOTAL
        assert hub.history_counts(tenant, "pm25") == {}
        device.sent = []
        device.publish({"pm25": 12.0})  # the agent still serves
        wait_for(lambda: hub.history_counts(tenant, "pm25").get(AQ + "aq-1") == 1, 20,
                 "a good message after the storm")
        assert agent.process is not None
        assert agent.process.poll() is None
    finally:
        device.close()
