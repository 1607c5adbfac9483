"""The demo's device-simulator process: sensors of every simulated type publishing over MQTT.

    python -m cityhub.web.devices_worker --count 40 --rate 2 --broker 127.0.0.1:PORT
        --hub URL --store DIR/devices.json

The first run registers the devices on the hub (edge.simulator.provision) and keeps their ids
and tokens in `--store`; a later run reuses them as they are (no re-registration, no token
rotation), registering only devices beyond those stored. The simulator itself is
edge.simulator.Simulator (one MQTT connection per device, QoS 1), stopped by SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path

import httpx

from cityhub.edge.simulator import SimulatedDevice, Simulator, provision
from cityhub.web.children import exit_with_parent, read_token

log = logging.getLogger("cityhub.web.devices_worker")


def load_stored(store: Path) -> list[SimulatedDevice]:
    try:
        rows = json.loads(store.read_text())
        return [SimulatedDevice(r["tenant"], r["device_id"], r["type"], r["token"]) for r in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def save(store: Path, devices: list[SimulatedDevice]) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"tenant": d.tenant, "device_id": d.device_id, "type": d.type, "token": d.token}
            for d in devices]
    store.write_text(json.dumps(rows, indent=1))
    store.chmod(0o600)  # device tokens


def devices_for(hub: str, count: int, store: Path, centre: tuple[float, float],
                spread: tuple[float, float] = (0.01, 0.01), token: str | None = None,
                owner: str = "demo") -> tuple[list[SimulatedDevice], int]:
    """`count` devices, stored ones first; returns them and how many were registered now."""
    stored = load_stored(store)
    if len(stored) >= count:
        return stored[:count], 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=hub, timeout=10.0, headers=headers) as http:
        fresh = provision(hub, "", count, owner=owner, centre=centre, spread=spread,
                          http=http)[len(stored):]
    everything = stored + fresh
    save(store, everything)
    return everything, len(fresh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cityhub.web.devices_worker")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--broker", required=True, help="host:port")
    parser.add_argument("--hub", required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--centre", default="116.3975,39.9087", help="lon,lat")
    parser.add_argument("--spread", default="0.01,0.01", help="half width,height in degrees")
    parser.add_argument("--owner", default="demo", help="department owning the devices")
    parser.add_argument("--token-file", type=Path, default=None,
                        help="bearer token of a service account that may register them")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    exit_with_parent()
    logging.basicConfig(level=logging.WARNING)
    host, _, port = args.broker.rpartition(":")
    lon, lat = (float(v) for v in args.centre.split(","))
    half_lon, half_lat = (float(v) for v in args.spread.split(","))
    devices, registered = devices_for(args.hub, args.count, args.store, (lon, lat),
                                      (half_lon, half_lat), read_token(args.token_file),
                                      args.owner)
    print(f"devices: {len(devices)} ({registered} registered now, "
          f"{len(devices) - registered} reused from {args.store}) at {args.rate:g} msg/s on "
          f"{args.broker}", flush=True)
    simulator = Simulator(devices, host, int(port), args.rate)
    with contextlib.suppress(KeyboardInterrupt):
        simulator.run()
    print(f"devices: sent {simulator.sent} messages", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
