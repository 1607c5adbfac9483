"""`cityhub simulate devices` (point 7): valid, diurnal readings for every type, published with
each device's credentials and accepted by the edge and the hub."""

from __future__ import annotations

import random
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from cityhub.devices.catalogue import CATALOGUE
from cityhub.devices.messages import validate
from cityhub.edge.simulator import SIMULATED_TYPES, SimulatedDevice, reading
from tests.edge.conftest import BIN, Hub, wait_for, write_config

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


@given(st.sampled_from(SIMULATED_TYPES), st.floats(0, 23.999), st.integers(0, 2**32))
def test_every_reading_passes_the_hubs_validation(kind: str, hour: float, seed: int) -> None:
    device = SimulatedDevice("", "d", kind, "token")
    raw = device.message(NOW.replace(hour=int(hour)), random.Random(seed))
    measurement = validate(orjson.loads(raw), CATALOGUE[kind], "", "d", raw,
                           NOW.replace(hour=23, minute=59))
    assert set(measurement.values) <= {a.name for a in CATALOGUE[kind].attributes}


def mean(kind: str, attribute: str, hour: float) -> float:
    rng = random.Random(7)
    values = [reading(kind, hour, rng, {})[attribute] for _ in range(200)]
    return sum(float(v) for v in values) / len(values)


def test_patterns_follow_the_day() -> None:
    assert mean("TrafficFlowObserved", "intensity", 8) > 3 * mean(
        "TrafficFlowObserved", "intensity", 3)
    assert mean("NoiseLevelObserved", "LAeq", 18) > mean("NoiseLevelObserved", "LAeq", 3) + 10
    assert reading("Streetlight", 23, random.Random(1), {})["powerState"] == "on"
    assert reading("Streetlight", 12, random.Random(1), {})["powerState"] == "off"
    state: dict[str, float] = {}
    first = float(reading("EnergyMeter", 10, random.Random(1), state)["totalActiveEnergyImport"])
    second = float(reading("EnergyMeter", 10, random.Random(2), state)["totalActiveEnergyImport"])
    assert second > first  # a meter only counts up


def test_simulated_devices_reach_the_hub_through_the_edge(
        mosquitto: None, hub: Hub, tenant: str, tmp_path: Path, agent_factory: Any) -> None:
    agent = agent_factory(write_config(tmp_path / "edge.toml", hub_url=hub.url, tenant=tenant,
                                       extra="[registry]\nrefresh_s = 1\n"))
    agent.start()
    token = hub.headers["Authorization"].removeprefix("Bearer ")
    run = subprocess.run([str(BIN / "cityhub"), "simulate", "devices", "--count", "7",
                          "--rate", "35", "--duration", "3", "--hub", hub.url, "--tenant",
                          tenant, "--token", token], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    iris = {"TrafficFlowObserved": "intensity", "AirQualityObserved": "pm25",
            "WeatherObserved": "temperature", "NoiseLevelObserved": "LAeq",
            "Streetlight": "powerState", "ParkingSpot": "status", "EnergyMeter": "activePower"}
    for kind, attribute in iris.items():
        wait_for(lambda k=kind, a=attribute: any(
            k in entity for entity in hub.history_counts(tenant, a)), 30, f"{kind} history")
    letters = hub.dead_letters(tenant)
    assert letters["total"] == 0, letters["items"][:3]
