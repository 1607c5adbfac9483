"""The whole path through real processes: device -> Mosquitto -> `cityhub edge` -> hub."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.edge.conftest import Device, Hub, publish_steadily, wait_for, write_config

RULES = """
[[rules]]
name = "pm25-high"
kind = "threshold"
type = "AirQualityObserved"
attribute = "pm25"
above = 75
severity = "high"
"""


def test_measurements_alerts_and_dead_letters_reach_the_hub(
        mosquitto: None, hub: Hub, tenant: str, tmp_path: Path, agent_factory: Any) -> None:
    token = hub.register("aq-1", "AirQualityObserved", tenant)
    agent = agent_factory(write_config(tmp_path / "edge.toml", hub_url=hub.url, tenant=tenant,
                                       extra=RULES))
    agent.start()
    alerts: list[dict[str, Any]] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2)
    listener.on_message = lambda _c, _u, m: alerts.append(orjson.loads(m.payload))
    listener.connect("127.0.0.1", 1883)
    listener.subscribe(f"cityhub/{tenant}/+/alert", qos=0)
    listener.loop_start()
    device = Device(tenant, "aq-1", token)
    device.connect()
    try:
        for value in (20.0, 30.0, 90.0, 95.0, 40.0):
            device.publish({"pm25": value})
        device.client.publish(f"cityhub/{tenant}/aq-1/up", b"{broken", qos=1)  # type: ignore[union-attr]
        device.client.publish(f"cityhub/{tenant}/ghost/up", b'{"values": {}}', qos=1)  # type: ignore[union-attr]
        wait_for(lambda: hub.history_counts(tenant, "pm25").get(
            "urn:ngsi-ld:AirQualityObserved:test:aq-1") == 5, 20, "five measurements")
        letters = wait_for(lambda: (d := hub.dead_letters(tenant))["total"] == 2 and d, 20,
                           "two dead letters")
        reasons = {item["reason"] for item in letters["items"]}
        assert "unknown device" in reasons  # checked by the hub: the edge did not know it
        assert any("not JSON" in r for r in reasons)
        wait_for(lambda: alerts, 5, "the local alert")
        assert len(alerts) == 1  # raised on crossing 75, not again at 95
        assert alerts[0]["value"] == 90.0
        assert alerts[0]["severity"] == "high"
        import httpx
        found = wait_for(lambda: httpx.get(f"{hub.url}/ngsi-ld/v1/entities", params={
            "type": "Alert"}, headers={"NGSILD-Tenant": tenant, **hub.headers}).json(), 10,
            "the Alert entity")
        assert found[0]["alertSource"]["object"] == "urn:ngsi-ld:AirQualityObserved:test:aq-1"
    finally:
        device.close()
        listener.loop_stop()


def test_hub_down_for_30_seconds_loses_and_duplicates_nothing(
        mosquitto: None, own_hub: Hub, tenant: str, tmp_path: Path, agent_factory: Any) -> None:
    """Fault (a): 10 devices publish 100 msg/s in total; the hub stops for 30 s mid-stream."""
    hub = own_hub
    devices = [Device(tenant, f"aq-{n}", hub.register(f"aq-{n}", "AirQualityObserved", tenant))
               for n in range(10)]
    agent = agent_factory(write_config(tmp_path / "edge.toml", hub_url=hub.url, tenant=tenant))
    agent.start()
    for device in devices:
        device.connect()
    publisher = threading.Thread(target=publish_steadily, args=(devices, 100.0, 38.0))
    publisher.start()
    try:
        time.sleep(4.0)
        hub.stop()
        time.sleep(30.0)
        hub.start()
        publisher.join()
        expected = {f"urn:ngsi-ld:AirQualityObserved:test:{d.device_id}": len(d.sent)
                    for d in devices}
        wait_for(lambda: hub.history_counts(tenant, "pm25") == expected, 30,
                 "every message in the history", every=0.5)
    finally:
        publisher.join()
        for device in devices:
            device.close()
    assert sum(expected.values()) >= 3000
    assert hub.history_counts(tenant, "pm25") == expected  # exactly once each


def test_aggregated_forwarding_and_a_revoked_device(
        mosquitto: None, hub: Hub, tenant: str, tmp_path: Path, agent_factory: Any) -> None:
    """forward = "aggregated": one mean per attribute per window reaches the hub; a revoked
    device's messages are refused at the edge (its registry copy says so)."""
    import httpx

    good = Device(tenant, "aq-1", hub.register("aq-1", "AirQualityObserved", tenant))
    revoked = Device(tenant, "aq-2", hub.register("aq-2", "AirQualityObserved", tenant))
    response = httpx.post(f"{hub.url}/devices/v1/devices/aq-2/revoke",
                          headers={"NGSILD-Tenant": tenant, **hub.headers}, timeout=10)
    assert response.status_code == 200, response.text
    agent = agent_factory(write_config(tmp_path / "edge.toml", hub_url=hub.url, tenant=tenant,
                                       forward="aggregated"))
    agent.start()
    for device in (good, revoked):
        device.connect()
    try:
        for value in (10.0, 20.0, 30.0, 40.0):
            good.publish({"pm25": value})
        revoked.publish({"pm25": 99.0})
        entity = "urn:ngsi-ld:AirQualityObserved:test:aq-1"
        wait_for(lambda: hub.history_counts(tenant, "pm25").get(entity) == 1, 30,
                 "the window's mean")
        history = httpx.get(f"{hub.url}/ngsi-ld/v1/temporal/entities/{entity}",
                            params={"attrs": "pm25"}, timeout=10,
                            headers={"NGSILD-Tenant": tenant, **hub.headers}).json()
        only = history["pm25"] if isinstance(history["pm25"], dict) else history["pm25"][0]
        assert only["value"] == 25.0
        letters = wait_for(lambda: (d := hub.dead_letters(tenant))["total"] == 1 and d, 20,
                           "the revoked device's message dead-lettered")
        assert letters["items"][0]["reason"] == "device is revoked"
        assert letters["items"][0]["device"] == "aq-2"
        assert "urn:ngsi-ld:AirQualityObserved:test:aq-2" not in hub.history_counts(
            tenant, "pm25")
    finally:
        for device in (good, revoked):
            device.close()
