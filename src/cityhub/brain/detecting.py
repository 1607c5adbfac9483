"""`cityhub@2.1`: v2.0 (`adaptive.py`) that also reads stop-line detectors at light load.

v2.0 judges whether its green is still used from the lane's counts, taking the moving vehicles
as spread along the lane: on a 180-m lane two vehicles count as 0.45 of a vehicle within 40 m
of the stop line, wherever they are. v2.1 asks the observer for the vehicles actually within
`gap_range_m` of each stop line (`JunctionObservation.near`: the twin's lane-area detectors) and

* **while the junction is lightly loaded** (no incoming detector `light_fill` full, i.e. no
  queue reaching that far back), decides the gap-out on those counts: it holds a green while a
  vehicle is about to cross the stop line and gives it up as soon as none is, as SUMO's
  actuation does with its detectors; and between decisions it offers each such green a look
  every `gap_check_s` (`gapped_out`), so that a gap is acted on within a second, not four;
* **once a queue fills a detector**, decides exactly as v2.0 (the lane's counts): in a loaded
  network a green given up the moment the stop line is clear while a platoon is on its way
  costs more than it saves (ingolstadt21 gridlocked in 1 of 3 seeds when the detectors also
  ruled at load).

An approach that goes on upstream of a lane shorter than the detector's reach (the twin's
feeders) is covered by the larger of the detector's count and v2.0's estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from cityhub.brain.adaptive import CityhubAdaptive
from cityhub.brain.controllers import register_version
from cityhub.brain.observations import EMPTY_LANE, VEHICLE_M, JunctionObservation, PhaseInfo


class CityhubDetecting(CityhubAdaptive):
    """v2.0 with gap-outs from stop-line detectors at light load."""

    name = "cityhub"
    version = "2.1"
    defaults: ClassVar[dict[str, float]] = {
        **CityhubAdaptive.defaults,
        "gap_check_s": 1.0,
        "light_fill": 0.3,
    }

    def __init__(self, **config: float) -> None:
        super().__init__(**config)
        cfg = self.config
        self._full = cfg["light_fill"] * cfg["gap_range_m"] / VEHICLE_M
        self._min_green, self._gap_veh = cfg["min_green_s"], cfg["gap_veh"]

    @property
    def near_range_m(self) -> float:
        return self.config["gap_range_m"]

    def _light(self, near: Mapping[str, float], lanes: tuple[str, ...]) -> bool:
        """No lane's stop-line detector is `light_fill` full: a lightly loaded junction."""
        full = self._full
        for lane_id in lanes:  # every second: indexing, not a `get` call per detector
            try:
                if near[lane_id] >= full:
                    return False
            except KeyError:  # no detector on that lane
                continue
        return True

    def _active(self, obs: JunctionObservation, index: int) -> float:
        near = obs.near
        if near is None or not self._light(near, self._plan_for(obs).lanes):
            return super()._active(obs, index)  # no detectors, or a loaded junction: as v2.0
        gap = self.config["gap_range_m"]
        approach, lanes = obs.approach, obs.lanes
        total = 0.0
        for lane_id in obs.phases[index].main_incoming:
            chain = approach.get(lane_id) if approach is not None else None
            counted = near.get(lane_id)
            if counted is not None and chain is None:
                total += counted
                continue
            queue, vehicles, _, length = chain or lanes.get(lane_id) or EMPTY_LANE
            estimate = queue + (vehicles - queue) * min(1.0, gap / max(length, 1.0))
            total += estimate if counted is None else max(counted, estimate)
        return total

    def gapped_out(self, phase: PhaseInfo, elapsed_s: float, near: Mapping[str, float],
                   incoming: tuple[str, ...]) -> bool:
        """Past its minimum green, no vehicle within `gap_range_m` of the green's main stop
        lines, and a lightly loaded junction: worth a decision now (`choose` makes it)."""
        if elapsed_s < self._min_green:
            return False
        total, get, gap_veh = 0.0, near.get, self._gap_veh
        for lane_id in phase.main_incoming:
            total += get(lane_id, 0.0)
            if total >= gap_veh:
                return False  # counts are >= 0: the sum can only grow, its other lanes unread
        return self._light(near, incoming)


register_version(CityhubDetecting)
