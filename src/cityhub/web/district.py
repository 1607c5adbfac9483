"""What the demo prepares in its data dir before anything runs: the district and the edge config.

    DATA/demo/scenarios/grid/   generated once (netgenerate + randomTrips), reused afterwards
    DATA/demo/edge.toml         rewritten each run (the broker's port may differ)
    DATA/demo/devices.json      the simulated devices' ids and tokens (devices_worker)
    DATA/demo/twin/             the twin's per-run files (tripinfo, loops, run counter)
    DATA/demo/logs/             one log per child process

`--scenario grid` (the default) is a generated signalised grid; any RESCO name
(sandbox.scenarios.RESCO_NAMES) or a path to a scenario is run in place instead.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cityhub.sandbox.scenarios import Scenario

GENERATED = {"grid": (4, 4)}  # generated districts: name -> (columns, rows)
DEMAND_VEH_PER_HOUR = 1200.0
DEMAND_SECONDS = 3600.0


@dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def scenarios(self) -> Path:
        return self.root / "scenarios"

    @property
    def edge_config(self) -> Path:
        return self.root / "edge.toml"

    @property
    def devices(self) -> Path:
        return self.root / "devices.json"

    @property
    def twin(self) -> Path:
        return self.root / "twin"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name.replace(' ', '-')}.log"


def prepare_scenario(name: str, paths: DemoPaths, scenario_dir: Path | None) -> tuple[
        Scenario, bool]:
    """The district to run and whether it was generated now (False: reused or RESCO)."""
    from cityhub.sandbox.scenarios import load_config, resolve

    if name not in GENERATED:
        return resolve(name, scenario_dir), False
    folder = paths.scenarios / name
    config = folder / f"{name}.sumocfg"
    if config.is_file() and (folder / f"{name}.rou.xml").is_file():
        return load_config(config), False
    from cityhub.sandbox.generate import Demand, grid

    columns, rows = GENERATED[name]
    scenario = grid(folder, columns, rows, Demand(DEMAND_VEH_PER_HOUR, DEMAND_SECONDS),
                    name=name)
    return scenario, True


# libsumo converts with SUMO's own PROJ; it runs one simulation per process, so in a child.
_CONVERT = """import sys, libsumo
net, *xy = sys.argv[1:]
libsumo.start(["sumo", "-n", net, "--no-step-log", "--no-warnings"])
xy = [float(v) for v in xy]
for i in range(0, len(xy), 2):
    print(*libsumo.simulation.convertGeo(xy[i], xy[i + 1]))
libsumo.close()
"""


def _projected(net: Path, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    args = [str(v) for point in points for v in point]
    done = subprocess.run([sys.executable, "-c", _CONVERT, str(net), *args],  # noqa: S603
                          capture_output=True, text=True, check=False, timeout=120)
    lines = [line.split() for line in done.stdout.strip().splitlines()]
    if done.returncode != 0 or len(lines) != len(points):
        raise RuntimeError(f"cannot place {net.name} on the map: {done.stderr.strip()[-200:]}")
    return [(float(lon), float(lat)) for lon, lat in lines]


def footprint(net: Path) -> tuple[float, float, float, float]:
    """Longitude, latitude of the network's centre and its half width and height in degrees,
    as the twin places it on the map (the simulated devices are spread over the same area)."""
    import sumolib

    from cityhub.sandbox.geo import has_projection, local_to_lonlat

    (x0, y0), (x1, y1) = sumolib.net.readNet(str(net)).getBBoxXY()
    if has_projection(net):
        (west, south), (east, north) = _projected(net, [(x0, y0), (x1, y1)])
    else:
        convert = local_to_lonlat()
        (west, south), (east, north) = convert(x0, y0), convert(x1, y1)
    return (round((west + east) / 2, 6), round((south + north) / 2, 6),
            round((east - west) / 2, 6), round((north - south) / 2, 6))


def write_edge_config(paths: DemoPaths, broker_host: str, broker_port: int, hub_url: str,
                      token: str | None = None) -> Path:
    """The edge agent's settings: the embedded broker in, the hub out (with the edge token),
    the outbox beside it. Mode 600: it holds the token."""
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.edge_config.touch(mode=0o600, exist_ok=True)
    paths.edge_config.chmod(0o600)
    credential = f'token = "{token}"\n' if token else ""
    paths.edge_config.write_text(
        "# written by `cityhub demo` on every start (the broker's port may change)\n"
        f'[mqtt]\nhost = "{broker_host}"\nport = {broker_port}\nclient_id = "cityhub-demo-edge"\n'
        f'\n[hub]\nurl = "{hub_url}"\ntransport = "http"\nforward = "raw"\n{credential}'
        '\n[outbox]\npath = "edge-outbox.db"\n'
        "\n[window]\nseconds = 60\n"
    )
    return paths.edge_config
