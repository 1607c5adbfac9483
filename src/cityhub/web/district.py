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


def footprint(net: Path) -> tuple[float, float, float, float]:
    """Longitude, latitude of the network's centre and its half width and height in degrees,
    as the twin places it on the map (the simulated devices are spread over the same area)."""
    import sumolib

    from cityhub.sandbox.geo import ToLonLat, has_projection, local_to_lonlat

    network = sumolib.net.readNet(str(net))
    (x0, y0), (x1, y1) = network.getBBoxXY()
    convert: ToLonLat = local_to_lonlat()
    if has_projection(net):
        def convert(x: float, y: float) -> tuple[float, float]:
            lon, lat = network.convertXY2LonLat(x, y)
            return float(lon), float(lat)
    (west, south), (east, north) = convert(x0, y0), convert(x1, y1)
    return (round((west + east) / 2, 6), round((south + north) / 2, 6),
            round((east - west) / 2, 6), round((north - south) / 2, 6))


def write_edge_config(paths: DemoPaths, broker_host: str, broker_port: int, hub_url: str) -> Path:
    """The edge agent's settings: the embedded broker in, the hub out, the outbox beside it."""
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.edge_config.write_text(
        "# written by `cityhub demo` on every start (the broker's port may change)\n"
        f'[mqtt]\nhost = "{broker_host}"\nport = {broker_port}\nclient_id = "cityhub-demo-edge"\n'
        f'\n[hub]\nurl = "{hub_url}"\ntransport = "http"\nforward = "raw"\n'
        '\n[outbox]\npath = "edge-outbox.db"\n'
        "\n[window]\nseconds = 60\n"
    )
    return paths.edge_config
