"""The twin publishes a living district into a real hub; the live loop drives its signals,
but only with a controller version somebody approved."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cityhub.brain.controllers import create_controller
from cityhub.sandbox.live import LiveSignalLoop
from cityhub.sandbox.registry import AlgorithmRegistry, RegistryError
from cityhub.sandbox.scenarios import Scenario
from tests.sandbox.conftest import cli


def _entities(hub: str, kind: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{hub}/ngsi-ld/v1/entities",
                       params={"type": kind, "limit": 1000, "options": "keyValues"})
    answer.raise_for_status()
    result: list[dict[str, object]] = answer.json()
    return result


def _in_wgs84(lon: float, lat: float) -> bool:
    return -180 <= lon <= 180 and -90 <= lat <= 90


@pytest.mark.slow
def test_twin_publishes_and_live_loop_needs_an_approved_controller(
    small_grid: Scenario, hub: str, tmp_path: Path
) -> None:
    done = cli("sandbox", "run", "--scenario", str(small_grid.config), "--controller",
               "cityhub", "--seconds", "130", "--out", str(tmp_path / "run"), "--hub", hub,
               "--district", "test")
    assert done.returncode == 0, done.stderr
    roads = _entities(hub, "RoadSegment")
    signals = _entities(hub, "TrafficSignal")
    flows = _entities(hub, "TrafficFlowObserved")
    areas = _entities(hub, "CongestionIndex")
    assert len(signals) == 4
    assert roads
    assert flows
    line = roads[0]["location"]
    assert isinstance(line, dict)
    assert line["type"] == "LineString"
    assert all(_in_wgs84(*point) for point in line["coordinates"])
    assert roads[0]["congestionLevel"] in {"smooth", "basicallySmooth", "light", "moderate",
                                           "severe"}
    assert {"urn:ngsi-ld:CongestionIndex:test:city"} <= {a["id"] for a in areas}
    assert str(signals[0]["controller"]).startswith("cityhub@2.2#")
    assert sum(int(f["intensity"]) for f in flows) > 0  # type: ignore[call-overload]

    controller = create_controller("cityhub")
    registry = AlgorithmRegistry(tmp_path / "algorithms.json")
    with pytest.raises(RegistryError, match="not approved"):
        LiveSignalLoop(hub, "test", small_grid.net, controller, registry)
    registry.record(controller, bench=[{"scenario": "grid", "avg_delay_s": [1.0, 0.0]}],
                    by="engineer")
    with pytest.raises(RegistryError, match="not approved"):
        LiveSignalLoop(hub, "test", small_grid.net, controller, registry)
    registry.approve(controller.identity, by="ethics committee")
    loop = LiveSignalLoop(hub, "test", small_grid.net, controller, registry)
    states = {}
    try:
        for second in range(12):
            states = loop.step(float(second), datetime.now(UTC))
    finally:
        loop.close()
    assert len(states) == 4
    after = {s["id"]: s for s in _entities(hub, "TrafficSignal")}
    for tls, state in states.items():
        assert after[f"urn:ngsi-ld:TrafficSignal:test:{tls}"]["phaseState"] == state


def test_approval_needs_bench_results_and_a_name(tmp_path: Path) -> None:
    registry = AlgorithmRegistry(tmp_path / "algorithms.json")
    controller = create_controller("max-pressure")
    registry.record(controller)
    with pytest.raises(RegistryError, match="no bench results"):
        registry.approve(controller.identity, by="someone")
    with pytest.raises(RegistryError, match="approver's name"):
        registry.approve(controller.identity, by=" ")
    with pytest.raises(RegistryError, match="no recorded"):
        registry.approve("ghost@1#0", by="someone")
