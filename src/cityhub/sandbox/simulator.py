"""The simulator port: libsumo for the shipped SUMO, TraCI for another install (`--sumo-home`).

Both expose the same TraCI API, so the twin holds one module object `api`. libsumo allows one
simulation per process and is not reproducible across restarts in one process: one run, one
process (the bench spawns a fresh process per run).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityhub.sandbox.lane_view import LaneReads


@dataclass
class Simulator:
    """A started simulation: `api` is the libsumo or traci module, `version` SUMO's own."""

    api: Any
    version: str
    backend: str

    @property
    def subscribes(self) -> bool:
        """Whether the values the twin reads come from subscriptions (`watch`). Over TraCI
        yes: they come with each step, where a read is a round trip. Under libsumo no: a
        subscription makes SUMO compute its values every step (240 lanes: about half the
        step's own cost on grid4x4), a read costs one C call when it is needed."""
        return self.backend != "libsumo"

    def watch(self, lanes: Iterable[str], detectors: Iterable[str]) -> None:
        """Make `lane_reads` and `detector_count` work for these lanes and lane-area detectors:
        over TraCI, subscribe to them (`subscribes`); under libsumo there is nothing to do."""
        if not self.subscribes:
            return
        for lane in lanes:
            self.api.lane.subscribe(lane, self._lane_variables)
        count = (self.api.constants.LAST_STEP_VEHICLE_NUMBER,)
        for detector in detectors:
            self.api.lanearea.subscribe(detector, count)

    @property
    def _lane_variables(self) -> tuple[int, int, int]:
        constants = self.api.constants
        return (constants.LAST_STEP_VEHICLE_HALTING_NUMBER,
                constants.LAST_STEP_VEHICLE_NUMBER, constants.VAR_WAITING_TIME)

    def lane_reads(self) -> LaneReads:
        """Lane id -> halted vehicles, vehicles, summed waiting time now: libsumo's getters, or
        over TraCI the subscription results of a lane given to `watch`."""
        if self.subscribes:
            results = self.api.lane.getSubscriptionResults
            return tuple(  # type: ignore[return-value]
                lambda lane, var=var: results(lane)[var] for var in self._lane_variables)
        lane = self.api.lane
        return (self.native("lane_getLastStepHaltingNumber", lane.getLastStepHaltingNumber),
                self.native("lane_getLastStepVehicleNumber", lane.getLastStepVehicleNumber),
                self.native("lane_getWaitingTime", lane.getWaitingTime))

    def detector_count(self) -> Callable[[str], int]:
        """Lane-area detector id -> vehicles on it now (as `lane_reads`)."""
        area = self.api.lanearea
        if self.subscribes:
            results, var = area.getSubscriptionResults, self.api.constants.LAST_STEP_VEHICLE_NUMBER
            return lambda detector: results(detector)[var]
        return self.native("lanearea_getLastStepVehicleNumber", area.getLastStepVehicleNumber)

    def native(self, name: str, fallback: Callable[..., Any]) -> Callable[..., Any]:
        """libsumo's module-level function `name` (e.g. `lane_getSubscriptionResults`), which
        skips the Python wrapper around it (a third of a call's cost, paid hundreds of times a
        decision); `fallback` (the API's method) over TraCI."""
        module = getattr(self.api, "_libsumo", None)
        return getattr(module, name) if module is not None else fallback

    def close(self) -> None:
        self.api.close()


def start(args: list[str], sumo_home: Path | None = None) -> Simulator:
    """Start SUMO with command-line `args` (without the binary)."""
    if sumo_home is None:
        import libsumo

        libsumo.start(["sumo", *args])
        return Simulator(libsumo, _version(libsumo), "libsumo")
    binary = sumo_home / "bin" / "sumo"
    if not binary.exists():
        raise FileNotFoundError(f"no SUMO binary at {binary}")
    os.environ["SUMO_HOME"] = str(sumo_home)  # its tools and XML schemas, not the pip install's
    tools = str(sumo_home / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    for name in [m for m in sys.modules if m == "traci" or m.startswith("traci.")]:
        del sys.modules[name]
    import traci

    # TraCI prints connection retries and SUMO's banner to stdout: keep the bench table clean.
    with contextlib.redirect_stdout(io.StringIO()):
        traci.start([str(binary), *args], stdout=subprocess.DEVNULL)
    return Simulator(traci, _version(traci), "traci")


def _version(api: Any) -> str:
    text = str(api.getVersion()[1])
    return text.replace("SUMO ", "").strip()
