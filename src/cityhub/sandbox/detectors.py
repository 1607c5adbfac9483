"""Stop-line detectors for the twin: one lane-area (E2) detector over the last metres of every
signalised incoming lane, which tells a controller how many vehicles are that close to the
stop line, exactly (the lane's own counts only say how many are somewhere on it).

SUMO fills the detectors in C++ each step; the twin reads a detector's count when a gap check
asks for it (`Simulator.detector_count`), one call per lane of the green it looks at.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import quoteattr

PREFIX = "cityhub_near_"


def detector_id(lane: str) -> str:
    return PREFIX + lane


def signalised_lanes(net: Path) -> dict[str, float]:
    """Incoming lane id -> length, for every lane with a link controlled by a traffic light."""
    lengths: dict[str, float] = {}
    controlled: set[str] = set()
    for _, element in ET.iterparse(net):  # noqa: S314 - the scenario's own network file
        if element.tag == "lane":
            lengths[element.get("id", "")] = float(element.get("length", "0"))
        elif element.tag == "connection" and element.get("tl"):
            controlled.add(f"{element.get('from')}_{element.get('fromLane')}")
        if element.tag in ("edge", "connection", "junction"):
            element.clear()
    return {lane: lengths[lane] for lane in sorted(controlled) if lane in lengths}


def near_detectors(net: Path, out: Path, range_m: float) -> tuple[Path, dict[str, str]]:
    """Write `out` with an E2 detector over the last `range_m` (or the whole lane, if shorter)
    of every signalised incoming lane; return it with lane -> detector id."""
    lanes = signalised_lanes(net)
    lines = ["<additional>"]
    ids = {}
    for lane, length in lanes.items():
        ids[lane] = detector_id(lane)
        start = max(0.0, length - range_m)
        lines.append(
            f"  <laneAreaDetector id={quoteattr(ids[lane])} lane={quoteattr(lane)} "
            f'pos="{start:.2f}" endPos="{length:.2f}" freq="86400" file="NUL"/>'
        )
    lines.append("</additional>")
    out.write_text("\n".join(lines) + "\n")
    return out, ids
