"""`cityhub`: the platform's own adaptive signal controller.

Rule (version 1.1, one configuration for every district), every `decision_interval_s` (2 s):

* each green phase is scored by what its main (protected) movements would serve: for each
  incoming lane, ``queue + moving_weight * approaching + wait_weight * waiting_s``, minus
  ``downstream_weight`` times the queue on the lanes it feeds (a pressure term), where
  `approaching` counts the moving vehicles within `range_m` of the stop line;
* a movement whose outgoing lanes are full (``fill >= spill_fill``) scores nothing: giving it
  green would only block the junction (spill-back guard);
* **gap-out**, as SUMO's actuation does: once the current phase's main lanes hold no queue and
  fewer than `gap_veh` vehicles within `gap_range_m` of the stop line, its green is no longer
  used, and the best other phase with demand gets it (empty phases are skipped, unlike a cycle);
* otherwise the current phase keeps its green until another scores more than
  ``(1 + switch_ratio) * current + switch_margin`` (a switch costs a yellow: that lost time is
  the price it weighs), and for at most `max_green_s` while others wait.
"""

from __future__ import annotations

from typing import ClassVar

from cityhub.brain.controllers import Controller, register
from cityhub.brain.observations import JunctionObservation


@register
class CityhubAdaptive(Controller):
    """Waiting-weighted pressure with gap-out, switching cost and a spill-back guard."""

    name = "cityhub"
    version = "1.1"
    defaults: ClassVar[dict[str, float]] = {
        "decision_interval_s": 2.0,
        "moving_weight": 1.0,
        "wait_weight": 0.01,
        "permissive_weight": 1.0,
        "range_m": 200.0,
        "gap_range_m": 40.0,
        "gap_veh": 0.5,
        "switch_margin": 0.5,
        "switch_ratio": 0.2,
        "hold_s": 10.0,
        "spill_fill": 0.9,
        "max_green_s": 25.0,
        "min_green_s": 5.0,
    }

    def _score(self, obs: JunctionObservation, index: int) -> float:
        cfg = self.config
        spill, moving, wait = cfg["spill_fill"], cfg["moving_weight"], cfg["wait_weight"]
        reach, loose = cfg["range_m"], cfg["permissive_weight"]
        phase = obs.phases[index]
        main = phase.main_incoming
        lanes = obs.lanes
        total = 0.0
        for lane_id, outs in phase.lanes_out:
            lane = lanes.get(lane_id)
            if lane is None or lane.vehicles == 0:
                continue
            if outs and all(obs.lane(o).fill >= spill for o in outs):
                continue
            near = (lane.vehicles - lane.queue) * min(1.0, reach / max(lane.length_m, 1.0))
            value = lane.queue + moving * near + wait * lane.waiting_s
            total += value if lane_id in main else loose * value
        return total

    def _active(self, obs: JunctionObservation, index: int) -> float:
        """Vehicles the current green still serves: queued or close to the stop line."""
        gap = self.config["gap_range_m"]
        return sum(obs.lane(lane).detected(gap) for lane in obs.phases[index].main_incoming)

    def choose(self, obs: JunctionObservation) -> int:
        if obs.phase is None:
            return obs.target if obs.target is not None else 0
        current = obs.phase
        if obs.phase_elapsed_s < self.config["min_green_s"] or len(obs.phases) < 2:
            return current  # the signal layer would hold it anyway: spare the scoring
        scores = [self._score(obs, i) for i in range(len(obs.phases))]
        best_score, best = max((s, i) for i, s in enumerate(scores) if i != current)
        if best_score <= 0:
            return current
        if obs.phase_elapsed_s >= self.config["max_green_s"]:
            return best
        if self._active(obs, current) < self.config["gap_veh"]:
            return best
        threshold = scores[current] * (1 + self.config["switch_ratio"])
        held = obs.phase_elapsed_s >= self.config["hold_s"]
        if held and best_score > threshold + self.config["switch_margin"]:
            return best
        return current
