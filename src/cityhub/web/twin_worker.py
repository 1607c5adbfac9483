"""The demo's twin process: one SUMO run of the district, paced to real time x speed.

    python -m cityhub.web.twin_worker --scenario DIR --hub URL --speed 2 --out DIR

Runs the scenario once with the `cityhub` controller, publishing RoadSegment,
TrafficFlowObserved, TrafficSignal and CongestionIndex into the hub every simulated minute
(sandbox.publisher), and sleeps between simulated minutes so the district lives in real time
times `--speed` instead of as fast as the machine allows. Published times are wall-clock times.
When the scenario ends the process exits 0 and the demo starts the next run with the next seed
(libsumo: one simulation per process). Sandbox and brain are only called, never changed.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from cityhub.web.children import exit_with_parent, read_token

if TYPE_CHECKING:
    from cityhub.sandbox.twin import Twin

log = logging.getLogger("cityhub.web.twin_worker")
SEED_FILE = "runs.txt"


def next_seed(out: Path) -> int:
    """1 for the first run in `out`, then 2, 3, ... (each loop of the district differs)."""
    path = out / SEED_FILE
    try:
        seed = int(path.read_text().strip()) + 1
    except (OSError, ValueError):
        seed = 1
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{seed}\n")
    return seed


class Pacer:
    """Holds the simulation back to `speed` simulated seconds per wall second."""

    def __init__(self, begin: float, speed: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.begin, self.speed, self.clock, self.sleep = begin, speed, clock, sleep
        self.wall0 = clock()

    def __call__(self, now: float) -> None:
        pause = self.wall0 + (now - self.begin) / self.speed - self.clock()
        if pause > 0:
            self.sleep(pause)


def run(scenario_ref: str, hub: str, speed: float, out: Path, district: str,
        controller_name: str, token: str | None = None) -> None:
    from cityhub.brain.controllers import create_controller
    from cityhub.sandbox.publisher import HubPublisher, induction_loops
    from cityhub.sandbox.runner import rules_for
    from cityhub.sandbox.scenarios import resolve
    from cityhub.sandbox.twin import simulate

    scenario = resolve(scenario_ref)
    seed = next_seed(out)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    publisher = HubPublisher(hub, district, client=httpx.Client(timeout=10.0, headers=headers))

    def observe(twin: Twin, now: float) -> None:
        # stamp entities with wall-clock time: simulated minutes pass `speed` times faster
        publisher.started = datetime.now(UTC) - timedelta(seconds=now - twin.begin)
        publisher.observe(twin, now)

    pacer = Pacer(scenario.begin, speed)
    loops = induction_loops(scenario.net, out / "loops.add.xml")
    log.info("event=twin_run scenario=%s seed=%d speed=%g hub=%s", scenario.name, seed, speed, hub)
    print(f"twin: {scenario.name} seed {seed} at {speed:g}x real time -> {hub}", flush=True)
    simulate(scenario, create_controller(controller_name), seed, scenario.end, out,
             rules_for(scenario), None, pacer, observe, [loops])
    print(f"twin: run {seed} ended at simulated {scenario.end:g} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cityhub.web.twin_worker")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--hub", required=True)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--district", default="demo")
    parser.add_argument("--controller", default="cityhub")
    parser.add_argument("--token-file", type=Path, default=None,
                        help="bearer token of the twin's service account (hub with auth on)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    exit_with_parent()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s "
                        "%(message)s")
    try:
        run(args.scenario, args.hub, args.speed, args.out, args.district, args.controller,
            read_token(args.token_file))
    except KeyboardInterrupt:
        print("twin: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
