"""`cityhub`: the platform's own adaptive signal controller.

Rule (one configuration for every district):

* each green phase is scored by the vehicles it would serve, weighted by how long they have
  waited: for each incoming lane, ``queue + moving_weight * moving + wait_weight * waiting_s``;
* a movement whose outgoing lane is full (``fill >= spill_fill``) scores nothing: giving it green
  would only block the junction (spill-back guard);
* the current phase keeps its green until another phase scores more than
  ``(1 + switch_ratio) * current + switch_margin`` (switching costs a yellow and an all-red: that
  lost time is the price it weighs), and for at most ``max_green_s`` while others wait;
* decisions every ``decision_interval_s`` (5 s), so greens end close to when their queue has
  cleared rather than on RESCO's 10-s grid.
"""

from __future__ import annotations

from typing import ClassVar

from cityhub.brain.controllers import Controller, register
from cityhub.brain.observations import JunctionObservation


@register
class CityhubAdaptive(Controller):
    """Waiting-time weighted demand with switching cost and a spill-back guard."""

    name = "cityhub"
    version = "1.0"
    defaults: ClassVar[dict[str, float]] = {
        "decision_interval_s": 5.0,
        "moving_weight": 1.0,
        "wait_weight": 0.01,
        "switch_margin": 0.5,
        "switch_ratio": 0.2,
        "spill_fill": 0.9,
        "max_green_s": 90.0,
    }

    def _score(self, obs: JunctionObservation, index: int) -> float:
        cfg = self.config
        total = 0.0
        spill, moving, wait = cfg["spill_fill"], cfg["moving_weight"], cfg["wait_weight"]
        for lane_id, outs in obs.phases[index].lanes_out:
            lane = obs.lane(lane_id)
            if lane.vehicles == 0:
                continue
            if outs and all(obs.lane(o).fill >= spill for o in outs):
                continue
            total += lane.queue + moving * lane.moving + wait * lane.waiting_s
        return total

    def choose(self, obs: JunctionObservation) -> int:
        if obs.phase is None:
            return obs.target if obs.target is not None else 0
        current = obs.phase
        scores = [self._score(obs, i) for i in range(len(obs.phases))]
        others = [(s, i) for i, s in enumerate(scores) if i != current]
        if not others:
            return current
        best_score, best = max(others)
        if best_score <= 0:
            return current
        if obs.phase_elapsed_s >= self.config["max_green_s"]:
            return best
        threshold = scores[current] * (1 + self.config["switch_ratio"])
        if best_score > threshold + self.config["switch_margin"]:
            return best
        return current
