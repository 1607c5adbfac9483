"""Stop-line detectors: one lane-area detector over the last metres of every signalised lane,
and the per-step view a controller reads them through."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from cityhub.sandbox.detectors import near_detectors, signalised_lanes
from cityhub.sandbox.lane_view import NearView
from cityhub.sandbox.scenarios import Scenario


def test_every_signalised_lane_gets_a_detector_ending_at_its_stop_line(
    small_grid: Scenario, tmp_path: Path
) -> None:
    lanes = signalised_lanes(small_grid.net)
    assert lanes  # the 2x2 grid's incoming lanes
    path, ids = near_detectors(small_grid.net, tmp_path / "near.add.xml", 40.0)
    assert set(ids) == set(lanes)
    found = ET.parse(path).getroot().findall("laneAreaDetector")  # noqa: S314 - our own file
    assert len(found) == len(lanes)
    for detector in found:
        length = lanes[detector.get("lane", "")]
        assert float(detector.get("endPos", "")) == round(length, 2)
        assert float(detector.get("pos", "")) == round(max(0.0, length - 40.0), 2)


def test_near_view_reads_each_detector_once_and_knows_only_its_lanes() -> None:
    calls: list[str] = []

    def read(detector: str) -> int:
        calls.append(detector)
        return 3

    view = NearView(read, {"a_0": "det_a"})
    assert view.get("a_0") == 3.0
    assert view.get("a_0") == 3.0
    assert view.get("b_0") is None
    assert view.get("b_0", 0.0) == 0.0
    assert calls == ["det_a"]
