"""Generated districts (grid, arterial) built with the netgenerate and randomTrips that ship with
eclipse-sumo, so anyone can make a scenario without the non-commercial RESCO data."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cityhub.sandbox.scenarios import Scenario, load_config


class GenerateError(RuntimeError):
    """A SUMO tool failed while building a scenario."""


def sumo_home() -> Path:
    """The pip-installed SUMO (eclipse-sumo)."""
    import sumo

    return Path(sumo.SUMO_HOME)


@dataclass(frozen=True)
class Demand:
    """Random trips: vehicles per hour over the whole network, over `seconds`, with a seed."""

    veh_per_hour: float = 1200.0
    seconds: float = 3600.0
    seed: int = 42
    fringe_factor: float = 10.0


def _run(args: list[str]) -> None:
    env = {**os.environ, "SUMO_HOME": str(sumo_home())}
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise GenerateError(f"{Path(args[0]).name} failed: {tail[0]}")


def _write_config(out: Path, name: str, seconds: float) -> Path:
    config = out / f"{name}.sumocfg"
    config.write_text(
        "<configuration>\n"
        f'  <input><net-file value="{name}.net.xml"/><route-files value="{name}.rou.xml"/>'
        "</input>\n"
        f'  <time><begin value="0"/><end value="{seconds:g}"/></time>\n'
        "</configuration>\n"
    )
    return config


def _trips(out: Path, name: str, demand: Demand) -> None:
    period = 3600.0 / demand.veh_per_hour
    _run([
        sys.executable, str(sumo_home() / "tools" / "randomTrips.py"),
        "-n", str(out / f"{name}.net.xml"), "-o", str(out / f"{name}.trips.xml"),
        "-r", str(out / f"{name}.rou.xml"), "-b", "0", "-e", f"{demand.seconds:g}",
        "-p", f"{period:.4f}", "--seed", str(demand.seed),
        "--fringe-factor", f"{demand.fringe_factor:g}", "--min-distance", "200",
        "--validate",
    ])


def grid(out: Path, columns: int, rows: int, demand: Demand, lanes: int = 2,
         block_m: float = 200.0, name: str = "grid") -> Scenario:
    """A columns x rows signalised grid with arms at the border and random through traffic."""
    if columns < 1 or rows < 1 or columns * rows < 2:
        raise GenerateError("a grid needs at least two junctions")
    out.mkdir(parents=True, exist_ok=True)
    net = out / f"{name}.net.xml"
    _run([
        str(sumo_home() / "bin" / "netgenerate"), "--grid",
        "--grid.x-number", str(columns), "--grid.y-number", str(rows),
        "--grid.length", f"{block_m:g}", "--grid.attach-length", f"{block_m:g}",
        "--default.lanenumber", str(lanes), "--default.speed", "13.89",
        "--tls.guess", "true", "--tls.default-type", "static", "--no-turnarounds", "true",
        "-o", str(net),
    ])
    _set_signals(net)
    _trips(out, name, demand)
    return load_config(_write_config(out, name, demand.seconds))


def arterial(out: Path, junctions: int, demand: Demand, lanes: int = 2,
             block_m: float = 300.0, name: str = "arterial") -> Scenario:
    """A signalised arterial of `junctions` crossings with side streets."""
    return grid(out, junctions, 1, demand, lanes=lanes, block_m=block_m, name=name)


def _set_signals(net: Path) -> None:
    """netgenerate's guess skips one-row grids and single-lane roads: signalise every junction
    with three or more approaches."""
    import sumolib

    network = sumolib.net.readNet(str(net))
    ids = [n.getID() for n in network.getNodes()
           if len(n.getIncoming()) >= 3 and n.getType() not in ("dead_end", "traffic_light")]
    if not ids:
        return
    _run([
        str(sumo_home() / "bin" / "netconvert"), "-s", str(net), "--tls.set", ",".join(ids),
        "--no-turnarounds", "true", "-o", str(net),
    ])
