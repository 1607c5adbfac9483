"""`cityhub`: the platform's own adaptive signal controller.

Rule (version 2.0, one configuration for every district), every `decision_interval_s` (4 s):

* **what it sees**: each incoming lane together with the short lanes feeding it within
  `approach_m` of the stop line (`JunctionObservation.approach`): a junction behind a 1-m stub
  lane keeps its queue upstream, where the lane alone cannot show it;
* **what a lane is worth**: ``queue + moving_weight * approaching + wait_weight * waiting_s
  + queue * (mean_wait / wait_scale_s) ** 2`` (MAXWAVE's queued plus approaching vehicles
  within `range_m`, plus the vehicles' waiting time against starvation: linear and small, and
  growing with the square of the queue's mean wait, so that a queue that has waited a minute
  counts double and two minutes five-fold, while ordinary waits hardly move the choice),
  nothing when every exit of the lane is full (``fill >= spill_fill``: green would only block
  the box);
* **what a phase serves**: per lane, the share of the lane's movements it lets go (protected
  `G` 1, permissive `g` `permissive_weight`). Phases are compared by what they serve
  *differently*: switching from the current phase to another gains the lanes the other serves
  more and gives up those the current serves more. A lane shared by a through and a protected
  left-turn phase is served by both and no longer makes the two chase each other;
* **gap-out**, as SUMO's actuation does: once the current phase's main lanes hold no queue and
  fewer than `gap_veh` vehicles within `gap_range_m` of the stop line, its green is no longer
  used, and the phase with the largest gain gets it (empty phases are skipped);
* otherwise, after `hold_s`, it switches when the gain exceeds ``(1 + switch_ratio) * loss +
  switch_margin`` (a switch costs a yellow: that lost time is the price it weighs), and after
  `max_green_s` whenever another phase gains anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from cityhub.brain.controllers import Controller, register
from cityhub.brain.observations import EMPTY_LANE, JunctionObservation, PhaseInfo

Weights = tuple[tuple[int, float], ...]
"""(lane index, weight) pairs."""


@dataclass(frozen=True)
class _Plan:
    """A junction's phases, precomputed once: its lanes, their exits, and per pair of phases
    (current, other) the lanes the other serves more (gain) and less (loss)."""

    phases: tuple[PhaseInfo, ...]
    lanes: tuple[str, ...]
    exits: tuple[tuple[str, ...], ...]
    main: tuple[tuple[str, ...], ...]
    gain: tuple[tuple[Weights, ...], ...]
    loss: tuple[tuple[Weights, ...], ...]


def _plan(phases: tuple[PhaseInfo, ...], permissive: float) -> _Plan:
    movements: dict[str, set[str]] = {}
    for phase in phases:
        for lane, out in phase.movements:
            movements.setdefault(lane, set()).add(out)
    lanes = tuple(sorted(movements))
    service = []
    for phase in phases:
        protected = set(phase.main_movements if phase.protected else ())
        green = set(phase.movements)
        share = []
        for lane in lanes:
            outs = movements[lane]
            served = sum(1.0 if (lane, o) in protected or not phase.protected else permissive
                         for o in outs if (lane, o) in green)
            share.append(served / len(outs))
        service.append(share)

    def diff(a: list[float], b: list[float]) -> Weights:
        return tuple((i, a[i] - b[i]) for i in range(len(lanes)) if a[i] > b[i])

    return _Plan(
        phases, lanes, tuple(tuple(sorted(movements[lane])) for lane in lanes),
        tuple(p.main_incoming for p in phases),
        tuple(tuple(diff(other, cur) for other in service) for cur in service),
        tuple(tuple(diff(cur, other) for other in service) for cur in service),
    )


@register
class CityhubAdaptive(Controller):
    """Approach-aware MAXWAVE with differential phase comparison, gap-out, switching cost and a
    spill-back guard."""

    name = "cityhub"
    version = "2.0"
    defaults: ClassVar[dict[str, float]] = {
        "decision_interval_s": 4.0,
        "approach_m": 200.0,
        "moving_weight": 1.0,
        "wait_weight": 0.01,
        "wait_scale_s": 60.0,
        "permissive_weight": 0.5,
        "range_m": 200.0,
        "gap_range_m": 40.0,
        "gap_veh": 0.5,
        "switch_margin": 0.5,
        "switch_ratio": 0.2,
        "hold_s": 10.0,
        "spill_fill": 0.9,
        "max_green_s": 60.0,
        "min_green_s": 5.0,
    }

    def __init__(self, **config: float) -> None:
        super().__init__(**config)
        self._plans: dict[str, _Plan] = {}

    def needs_observation(self, green: bool, elapsed_s: float) -> bool:
        return green and elapsed_s >= self.config["min_green_s"]

    def _plan_for(self, obs: JunctionObservation) -> _Plan:
        plan = self._plans.get(obs.junction_id)
        if plan is None or plan.phases is not obs.phases:
            plan = self._plans[obs.junction_id] = _plan(
                obs.phases, self.config["permissive_weight"])
        return plan

    def _values(self, obs: JunctionObservation, plan: _Plan) -> list[float]:
        """What serving each lane is worth now (see the module docstring)."""
        cfg = self.config
        spill, moving, wait, reach = (cfg["spill_fill"], cfg["moving_weight"],
                                      cfg["wait_weight"], cfg["range_m"])
        scale = cfg["wait_scale_s"]
        view = obs.approach if obs.approach is not None else obs.lanes
        lanes = obs.lanes
        values = []
        for lane_id, exits in zip(plan.lanes, plan.exits, strict=True):
            queue, vehicles, waiting, length = view.get(lane_id) or lanes.get(lane_id) or EMPTY_LANE
            if not vehicles:
                values.append(0.0)
                continue
            for out in exits:  # is an exit not full? (LaneState.fill, inlined: hot path)
                exit_state = lanes.get(out) or EMPTY_LANE
                if exit_state[1] * 7.5 < spill * max(exit_state[3], 7.5):
                    break
            else:  # every exit full: green would only block the box
                values.append(0.0)
                continue
            near = (vehicles - queue) * min(1.0, reach / max(length, 1.0))
            value = queue + moving * near + wait * waiting
            if scale and queue:
                value += queue * (waiting / queue / scale) ** 2
            values.append(value)
        return values

    def _active(self, obs: JunctionObservation, index: int) -> float:
        """Vehicles the current green still serves: queued or close to the stop line."""
        gap = self.config["gap_range_m"]
        view = obs.approach if obs.approach is not None else obs.lanes
        lanes = obs.lanes
        total = 0.0
        for lane_id in obs.phases[index].main_incoming:  # LaneState.detected, inlined: hot path
            queue, vehicles, _, length = view.get(lane_id) or lanes.get(lane_id) or EMPTY_LANE
            total += queue + (vehicles - queue) * min(1.0, gap / max(length, 1.0))
        return total

    def choose(self, obs: JunctionObservation) -> int:
        if obs.phase is None:
            return obs.target if obs.target is not None else 0
        current = obs.phase
        if obs.phase_elapsed_s < self.config["min_green_s"] or len(obs.phases) < 2:
            return current  # the signal layer would hold it anyway: spare the scoring
        cfg = self.config
        elapsed = obs.phase_elapsed_s
        active = self._active(obs, current) >= cfg["gap_veh"]
        if active and elapsed < cfg["hold_s"]:
            return current  # still discharging, too early to weigh a switch: spare the scoring
        plan = self._plan_for(obs)
        values = self._values(obs, plan)
        gains, losses = plan.gain[current], plan.loss[current]
        best, best_net = current, float("-inf")
        cost = 1 + cfg["switch_ratio"]
        for other in range(len(plan.phases)):
            if other == current:
                continue
            gain = 0.0
            for i, w in gains[other]:
                gain += values[i] * w
            if gain <= 0:
                continue
            net = gain
            for i, w in losses[other]:
                net -= cost * values[i] * w
            if net > best_net:
                best, best_net = other, net
        if best == current:
            return current
        if not active or elapsed >= cfg["max_green_s"]:
            return best  # gap-out, or the maximum green
        return best if best_net > cfg["switch_margin"] else current
