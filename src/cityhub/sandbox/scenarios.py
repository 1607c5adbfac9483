"""Where scenarios come from: RESCO's folder (read in place, never packaged) or a user's path.

The RESCO data (Cologne: CC BY-NC-SA, grid/arterial: CC BY-NC, Ingolstadt: GPL-3.0) stays in
`../shared/scenarios/resco` beside the repository, or wherever `CITYHUB_SCENARIO_DIR` points.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

RESCO_NAMES = (
    "cologne1", "cologne3", "cologne8", "ingolstadt1", "ingolstadt7", "ingolstadt21",
    "grid4x4", "arterial4x4",
)
# RESCO's control timing: (decision step, yellow) in seconds; 10 s / 3 s unless listed.
_RESCO_TIMING = {"arterial4x4": (5.0, 2.0)}


class ScenarioError(ValueError):
    """A scenario name or path that cannot be resolved or read."""


@dataclass(frozen=True)
class Scenario:
    """A runnable SUMO scenario: its .sumocfg, network, time window and signal timing."""

    name: str
    config: Path
    net: Path
    begin: float
    end: float
    yellow_s: float = 3.0
    decision_step_s: float = 10.0
    all_red_s: float = 0.0

    @property
    def folder(self) -> Path:
        return self.config.parent


def default_scenario_dir(configured: Path | None = None) -> Path:
    """CITYHUB_SCENARIO_DIR, else `../shared/scenarios/resco` from the repository root (or from
    the nearest folder above it that holds `shared/scenarios/resco`, as in a git worktree)."""
    if configured is not None:
        return configured
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            if (folder / "pyproject.toml").exists():
                for above in folder.parents:
                    candidate = above / "shared" / "scenarios" / "resco"
                    if candidate.is_dir():
                        return candidate
    return Path.cwd() / "scenarios"


def _value(root: ET.Element, tag: str) -> str | None:
    node = root.find(f".//{tag}")
    return node.get("value") if node is not None else None


def network_all_red_s(net: Path) -> float:
    """The longest all-red the network's own signal programs show after a yellow (0 when none).

    This is the scenario's clearance for the signal layer: cityhub's controllers never show a
    conflicting green sooner after a yellow than the network's own programs (what `fixed` runs)
    do. RESCO's and netgenerate's networks have no all-red stage: yellow is their clearance.
    """
    longest = 0.0
    try:
        for _, element in ET.iterparse(net):  # noqa: S314 - the scenario's own network file
            if element.tag != "tlLogic":
                if element.tag in ("edge", "junction", "connection"):
                    element.clear()
                continue
            phases = [(p.get("state", ""), float(p.get("duration", "0")))
                      for p in element.findall("phase")]
            for (before, _), (state, duration) in zip(phases[-1:] + phases[:-1], phases,
                                                      strict=True):
                cleared = not any(c in "GgyY" for c in state)
                if cleared and any(c in "yY" for c in before):
                    longest = max(longest, duration)
            element.clear()
    except (OSError, ET.ParseError) as error:
        raise ScenarioError(f"cannot read {net}: {error}") from None
    return longest


def load_config(config: Path, name: str | None = None) -> Scenario:
    """Read a .sumocfg: its network, begin and end (default one hour)."""
    try:
        root = ET.parse(config).getroot()  # noqa: S314 - a local file the user pointed at
    except (OSError, ET.ParseError) as error:
        raise ScenarioError(f"cannot read {config}: {error}") from None
    net = _value(root, "net-file")
    if not net:
        raise ScenarioError(f"{config} names no net-file")
    begin = float(_value(root, "begin") or 0)
    end = float(_value(root, "end") or begin + 3600)
    label = name or config.stem
    step, yellow = _RESCO_TIMING.get(label, (10.0, 3.0))
    net_path = (config.parent / net.split(",")[0]).resolve()
    return Scenario(label, config.resolve(), net_path, begin, end, yellow_s=yellow,
                    decision_step_s=step, all_red_s=network_all_red_s(net_path))


def resolve(name_or_path: str, scenario_dir: Path | None = None) -> Scenario:
    """A RESCO name (`cologne1`), a folder holding one .sumocfg, or a .sumocfg path."""
    path = Path(name_or_path)
    if path.suffix == ".sumocfg" and path.is_file():
        return load_config(path)
    if path.is_dir():
        configs = sorted(path.glob("*.sumocfg"))
        if len(configs) != 1:
            raise ScenarioError(f"{path} holds {len(configs)} .sumocfg files, expected one")
        return load_config(configs[0], path.name if path.name in RESCO_NAMES else None)
    root = default_scenario_dir(scenario_dir)
    folder = root / name_or_path
    config = folder / f"{name_or_path}.sumocfg"
    if config.is_file():
        return load_config(config, name_or_path)
    raise ScenarioError(
        f"no scenario {name_or_path!r}: not a .sumocfg, not a folder, not in {root} "
        "(set CITYHUB_SCENARIO_DIR)"
    )
