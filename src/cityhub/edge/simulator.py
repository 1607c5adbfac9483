"""Simulated devices: realistic diurnal patterns per Smart Data Models type, published on MQTT
with each device's own credentials (`cityhub simulate devices`; the demo and benchmarks use it).

`reading(kind, hour, rng, state)` is pure: the values a device of `kind` reports at local `hour`
(0-24), with noise from `rng`; `state` carries what accumulates (energy meters).
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityhub.devices.messages import format_utc
from cityhub.devices.registry import topic

SIMULATED_TYPES = ("TrafficFlowObserved", "AirQualityObserved", "WeatherObserved",
                   "NoiseLevelObserved", "Streetlight", "ParkingSpot", "EnergyMeter")


def _peak(hour: float, centre: float, width: float) -> float:
    distance = min(abs(hour - centre), 24 - abs(hour - centre))
    return math.exp(-((distance / width) ** 2))


def _rush(hour: float) -> float:
    """0..1: commuter traffic with peaks at 08:00 and 18:00 and quiet nights."""
    return min(1.0, 0.08 + 0.9 * _peak(hour, 8, 1.5) + 0.85 * _peak(hour, 18, 1.8)
               + 0.35 * _peak(hour, 13, 3))


def reading(kind: str, hour: float, rng: random.Random, state: dict[str, float]) -> dict[
        str, float | str]:
    rush = _rush(hour)
    if kind == "TrafficFlowObserved":
        occupancy = min(0.95, 0.05 + 0.6 * rush + rng.gauss(0, 0.03))
        return {"intensity": float(max(0, round(20 + 580 * rush + rng.gauss(0, 25)))),
                "averageVehicleSpeed": round(max(5.0, 62 - 40 * rush + rng.gauss(0, 3)), 1),
                "occupancy": round(max(0.0, occupancy), 3)}
    if kind == "AirQualityObserved":
        base = 18 + 45 * rush + 10 * _peak(hour, 23, 3)
        pm25 = max(1.0, base + rng.gauss(0, 4))
        return {"pm25": round(pm25, 1), "pm10": round(pm25 * 1.6 + rng.gauss(0, 5), 1),
                "no2": round(max(1.0, 15 + 55 * rush + rng.gauss(0, 5)), 1),
                "o3": round(max(1.0, 30 + 70 * _peak(hour, 15, 3) + rng.gauss(0, 6)), 1),
                "co": round(max(0.05, 0.4 + 0.8 * rush + rng.gauss(0, 0.05)), 2)}
    if kind == "WeatherObserved":
        temperature = 14 + 7 * math.sin((hour - 9) / 24 * 2 * math.pi) + rng.gauss(0, 0.3)
        return {"temperature": round(temperature, 1),
                "relativeHumidity": round(min(100, max(5, 85 - 2.5 * (temperature - 8)
                                                       + rng.gauss(0, 2))), 1),
                "windSpeed": round(max(0.0, 3 + 2 * _peak(hour, 15, 4) + rng.gauss(0, 0.8)), 1),
                "precipitation": round(max(0.0, rng.gauss(-2, 1.2)), 1)}
    if kind == "NoiseLevelObserved":
        laeq = 42 + 26 * rush + rng.gauss(0, 1.5)
        return {"LAeq": round(laeq, 1), "LAmax": round(laeq + 8 + abs(rng.gauss(0, 4)), 1)}
    if kind == "Streetlight":
        dark = hour >= 18.5 or hour < 6.0
        level = (0.3 + 0.7 * rush) if dark else 0.0
        return {"powerState": "on" if dark else "off", "illuminanceLevel": round(level, 2),
                "powerConsumption": round(0.15 * level + (0.002 if dark else 0.0), 3)}
    if kind == "ParkingSpot":
        busy = 0.15 + 0.75 * _peak(hour, 11, 3.5) + 0.5 * _peak(hour, 20, 2)
        return {"status": "occupied" if rng.random() < min(0.95, busy) else "free"}
    if kind == "EnergyMeter":
        power = max(0.1, 2 + 6 * _peak(hour, 10, 3) + 5 * _peak(hour, 19, 2) + rng.gauss(0, 0.3))
        total = state.get("energy", 1000.0 + rng.random() * 500) + power / 3600.0
        state["energy"] = total
        return {"activePower": round(power, 3), "totalActiveEnergyImport": round(total, 4)}
    raise ValueError(f"no simulation for {kind}")


@dataclass
class SimulatedDevice:
    tenant: str
    device_id: str
    type: str
    token: str
    state: dict[str, float] = field(default_factory=dict)

    def message(self, moment: datetime, rng: random.Random) -> bytes:
        hour = moment.hour + moment.minute / 60 + moment.second / 3600
        return orjson.dumps({"id": uuid.uuid4().hex, "key": self.token,
                             "observedAt": format_utc(moment),
                             "values": reading(self.type, hour, rng, self.state)})


class Simulator:
    """Publishes `rate` messages per second in total, round-robin over the devices, each with
    its own MQTT connection credentials (username = device id, password = token) and QoS 1.
    `clock_speed` > 1 runs the day faster (the hour of day advances that much quicker)."""

    def __init__(self, devices: list[SimulatedDevice], host: str, port: int, rate: float,
                 clock_speed: float = 1.0, seed: int = 1) -> None:
        self.devices, self.host, self.port, self.rate = devices, host, port, rate
        self.clock_speed = clock_speed
        self.rng = random.Random(seed)  # noqa: S311 - simulated readings, not secrets
        self.sent = 0
        self._stop = threading.Event()
        self._clients: list[mqtt.Client] = []

    def _connect(self) -> None:
        for device in self.devices:
            client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                 client_id=f"sim-{device.device_id}-{uuid.uuid4().hex[:6]}")
            client.username_pw_set(device.device_id, device.token)
            client.connect(self.host, self.port, keepalive=30)
            client.loop_start()
            self._clients.append(client)

    def run(self, duration_s: float | None = None) -> int:
        self._connect()
        start = time.monotonic()
        started_at = datetime.now(UTC)
        try:
            while not self._stop.is_set():
                elapsed = time.monotonic() - start
                if duration_s is not None and elapsed >= duration_s:
                    break
                due = int(elapsed * self.rate) + 1
                while self.sent < due:
                    index = self.sent % len(self.devices)
                    device, client = self.devices[index], self._clients[index]
                    moment = datetime.fromtimestamp(
                        started_at.timestamp() + elapsed * self.clock_speed, UTC) \
                        if self.clock_speed != 1.0 else datetime.now(UTC)
                    client.publish(topic(device.tenant, device.device_id),
                                   device.message(moment, self.rng), qos=1)
                    self.sent += 1
                time.sleep(max(0.0, (self.sent / self.rate) - (time.monotonic() - start)))
        finally:  # disconnect all first: their network threads then end together
            for client in self._clients:
                client.disconnect()
            for client in self._clients:
                client.loop_stop()
        return self.sent

    def stop(self) -> None:
        self._stop.set()


def provision(hub_url: str, tenant: str, count: int, owner: str = "sim",
              types: tuple[str, ...] = SIMULATED_TYPES, centre: tuple[float, float] = (
                  116.397, 39.909), http: Any = None,
              spread: tuple[float, float] = (0.05, 0.04), token: str | None = None
              ) -> list[SimulatedDevice]:
    """Register `count` devices (sim-<type>-<n>) on the hub, or rotate the token of those that
    exist; devices spread up to `spread` degrees (longitude, latitude) around `centre`."""
    import httpx

    client = http or httpx.Client(base_url=hub_url, timeout=10.0)
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    rng = random.Random(count)  # noqa: S311 - simulated positions
    devices = []
    for n in range(count):
        kind = types[n % len(types)]
        device_id = f"sim-{kind[:-8] if kind.endswith('Observed') else kind}-{n}".lower()
        location = [round(centre[0] + rng.uniform(-spread[0], spread[0]), 6),
                    round(centre[1] + rng.uniform(-spread[1], spread[1]), 6)]
        response = client.post("/devices/v1/devices", headers=headers, json={
            "id": device_id, "type": kind, "owner": owner, "location": location})
        if response.status_code == 409:
            response = client.post(f"/devices/v1/devices/{device_id}/rotate", headers=headers)
        response.raise_for_status()
        devices.append(SimulatedDevice(tenant, device_id, kind, response.json()["token"]))
    return devices
