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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from cityhub.brain.controllers import Controller, PhaseCache, register_version
from cityhub.brain.observations import VEHICLE_M, JunctionObservation, LaneState, PhaseInfo

Weights = tuple[tuple[int, float], ...]
"""(lane index, weight) pairs."""


@dataclass(frozen=True)
class PhasePlan:
    """A junction's phases, precomputed once: its lanes, their exits, and per pair of phases
    (current, other) the lanes the other serves more (gain) and less (loss)."""

    phases: tuple[PhaseInfo, ...]
    lanes: tuple[str, ...]
    exits: tuple[tuple[str, ...], ...]
    main: tuple[tuple[str, ...], ...]
    gain: tuple[tuple[Weights, ...], ...]
    loss: tuple[tuple[Weights, ...], ...]
    pairs: tuple[tuple[tuple[int, Weights, Weights], ...], ...]
    """Per current phase: (other phase, its gain, its loss) for every other phase that gains."""


def phase_plan(phases: tuple[PhaseInfo, ...], permissive: float) -> PhasePlan:
    """The plan of `phases`: a phase serves the share of a lane's movements it lets go, a
    permissive movement (`g` in a phase that protects others) counting `permissive`."""
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

    gain = tuple(tuple(diff(other, cur) for other in service) for cur in service)
    loss = tuple(tuple(diff(cur, other) for other in service) for cur in service)
    return PhasePlan(
        phases, lanes, tuple(tuple(sorted(movements[lane])) for lane in lanes),
        tuple(p.main_incoming for p in phases), gain, loss,
        tuple(tuple((other, gain[cur][other], loss[cur][other]) for other in range(len(phases))
                    if other != cur and gain[cur][other]) for cur in range(len(phases))),
    )


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
        self._plans = PhaseCache(self._build_plan)
        cfg = self.config  # the scoring's settings, read once: `_worth` runs for every lane
        self._spill, self._moving, self._wait = (cfg["spill_fill"], cfg["moving_weight"],
                                                 cfg["wait_weight"])
        self._reach, self._scale = cfg["range_m"], cfg["wait_scale_s"]

    def needs_observation(self, green: bool, elapsed_s: float) -> bool:
        return green and elapsed_s >= self.config["min_green_s"]

    def _build_plan(self, phases: tuple[PhaseInfo, ...]) -> PhasePlan:
        return phase_plan(phases, self.config["permissive_weight"])

    def _plan_for(self, obs: JunctionObservation) -> PhasePlan:
        return self._plans.get(obs)

    def _worth(self, lane_id: str, exits: tuple[str, ...], lanes: Mapping[str, LaneState],
               approach: Mapping[str, LaneState] | None) -> float:
        """What serving lane `lane_id` (leaving by `exits`) is worth now (see the module
        docstring): its approach where the observer sees one, else the lane alone, else an
        empty lane."""
        state = approach.get(lane_id) if approach is not None else None
        if state is None:
            try:
                state = lanes[lane_id]
            except KeyError:
                return 0.0  # an unseen lane is empty
        queue, vehicles, waiting, length = state
        if not vehicles:
            return 0.0
        spill = self._spill
        for out in exits:  # is an exit not full? (LaneState.fill, inlined: hot path)
            try:
                exit_state = lanes[out]
            except KeyError:
                break  # an unseen exit is empty
            if exit_state[1] * VEHICLE_M < spill * max(exit_state[3], VEHICLE_M):
                break
        else:  # every exit full: green would only block the box
            return 0.0
        near = (vehicles - queue) * min(1.0, self._reach / max(length, 1.0))
        worth = queue + self._moving * near + self._wait * waiting
        scale = self._scale
        if scale and queue:
            worth += queue * (waiting / queue / scale) ** 2
        return worth

    def _active(self, obs: JunctionObservation, index: int) -> float:
        """Vehicles the current green still serves: queued or close to the stop line."""
        gap = self.config["gap_range_m"]
        approach, lanes = obs.approach, obs.lanes
        total = 0.0
        for lane_id in obs.phases[index].main_incoming:  # LaneState.detected, inlined: hot path
            state = approach.get(lane_id) if approach is not None else None
            if state is None:
                try:
                    state = lanes[lane_id]
                except KeyError:
                    continue  # an unseen lane is empty: it adds nothing
            queue, vehicles, _, length = state
            if vehicles or queue:  # an empty lane adds nothing
                total += queue + (vehicles - queue) * min(1.0, gap / max(length, 1.0))
        return total

    def choose(self, obs: JunctionObservation) -> int:
        current = obs.phase
        if current is None:
            return obs.target if obs.target is not None else 0
        cfg = self.config
        elapsed = obs.phase_elapsed_s
        if elapsed < cfg["min_green_s"] or len(obs.phases) < 2:
            return current  # the signal layer would hold it anyway: spare the scoring
        active = self._active(obs, current) >= cfg["gap_veh"]
        if active and elapsed < cfg["hold_s"]:
            return current  # still discharging, too early to weigh a switch: spare the scoring
        plan = self._plan_for(obs)
        ids, exits = plan.lanes, plan.exits
        lanes, approach = obs.lanes, obs.approach
        # A lane is scored when a phase comparison first uses it. While the green is used, a
        # phase wins only with a net gain above the margin, and net <= gain (the losses are
        # >= 0): one that gains no more cannot win, and its losses are not scored. Decisions
        # are those of scoring every lane (tests/brain/test_lazy_scoring.py).
        values: list[float | None] = [None] * len(ids)
        floor = cfg["switch_margin"] if active and elapsed < cfg["max_green_s"] else 0.0
        best, best_net = current, float("-inf")
        cost = 1 + cfg["switch_ratio"]
        for other, gains, losses in plan.pairs[current]:
            gain = 0.0
            for i, w in gains:
                v = values[i]
                if v is None:
                    v = values[i] = self._worth(ids[i], exits[i], lanes, approach)
                gain += v * w
            if gain <= floor:
                continue
            net = gain
            for i, w in losses:
                v = values[i]
                if v is None:
                    v = values[i] = self._worth(ids[i], exits[i], lanes, approach)
                net -= cost * v * w
            if net > best_net:
                best, best_net = other, net
        if best == current:
            return current
        if not active or elapsed >= cfg["max_green_s"]:
            return best  # gap-out, or the maximum green
        return best if best_net > cfg["switch_margin"] else current


register_version(CityhubAdaptive)
