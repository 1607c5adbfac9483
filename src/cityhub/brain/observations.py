"""What a signal controller sees (observations) and what it may ask for (phase decisions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

VEHICLE_M = 7.5
"""Road taken by one queued vehicle, gap included: a lane's storage is its length over this."""


class LaneState(NamedTuple):
    """One lane at one instant: halted vehicles, all vehicles, their summed waiting time.

    A named tuple: the twin builds hundreds per decision, and tuples are the cheapest to make."""

    queue: float
    vehicles: float
    waiting_s: float = 0.0
    length_m: float = 100.0

    @property
    def moving(self) -> float:
        """Vehicles on the lane that are not halted (approaching the stop line)."""
        return max(0, self.vehicles - self.queue)

    def detected(self, range_m: float) -> float:
        """Vehicles a detector reaching `range_m` upstream of the stop line sees: the queue
        (it starts at the stop line) plus the moving vehicles, taken as spread over the lane."""
        return self.queue + self.moving * min(1.0, range_m / max(self.length_m, 1.0))

    @property
    def fill(self) -> float:
        """Share of the lane's storage taken (`VEHICLE_M` per vehicle), 0-1."""
        return min(1.0, self.vehicles * VEHICLE_M / max(self.length_m, VEHICLE_M))


EMPTY_LANE = LaneState(0, 0)


Movement = tuple[str, str]
"""(incoming lane, outgoing lane) of one signalised link."""


@dataclass(frozen=True)
class PhaseInfo:
    """A green phase: its SUMO state string, its movements (incoming lane, outgoing lane) and,
    of those, the protected ones (`G`: priority green; `g` yields to conflicting traffic)."""

    state: str
    movements: tuple[Movement, ...]
    duration_s: float = 30.0
    protected: tuple[Movement, ...] = ()

    @classmethod
    def from_links(cls, state: str, links: Sequence[Sequence[Movement]],
                   duration_s: float = 30.0) -> PhaseInfo:
        """The phase showing `state` over a junction's links (`links[i]`: link i's movements)."""
        def movements(chars: str) -> tuple[Movement, ...]:
            return tuple(dict.fromkeys(
                m for i, c in enumerate(state) if c in chars and i < len(links) for m in links[i]))
        return cls(state, movements("Gg"), duration_s, movements("G"))

    @cached_property
    def incoming(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(lane for lane, _ in self.movements))

    @cached_property
    def main_movements(self) -> tuple[Movement, ...]:
        """The movements this phase is for: its protected ones (all when none is protected).

        A through phase that lets left turns go permissively (`g`) is not the left turns'
        phase: like RESCO's phase pairs, demand-based controllers count the main movements."""
        return self.protected or self.movements

    @cached_property
    def main_incoming(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(lane for lane, _ in self.main_movements))

    @cached_property
    def main_lanes_out(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Each incoming lane of a main movement with the outgoing lanes it feeds."""
        return tuple(
            (lane, tuple(o for i, o in self.main_movements if i == lane))
            for lane in self.main_incoming
        )

    @cached_property
    def lanes_out(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Each incoming lane with the outgoing lanes it feeds in this phase."""
        return tuple(
            (lane, tuple(o for i, o in self.movements if i == lane)) for lane in self.incoming
        )


@dataclass(frozen=True)
class JunctionObservation:
    """A signalised junction at time `time`: lanes, green phases, which one shows and since when.

    `phase` is the green phase showing, or None while the signal layer runs a yellow/all-red
    transition (then `target` is the phase it is moving to).
    """

    junction_id: str
    time: float
    phases: tuple[PhaseInfo, ...]
    lanes: Mapping[str, LaneState]
    phase: int | None
    phase_elapsed_s: float
    target: int | None = None
    approach: Mapping[str, LaneState] | None = None
    """Per incoming lane, the lane together with the short lanes feeding it within the
    controller's reach (`approach_m`), when the observer can see them: a junction behind a 1-m
    stub lane keeps its queue upstream. None: the incoming lanes alone."""
    near: Mapping[str, float] | None = None
    """Per incoming lane, the vehicles within the controller's `gap_range_m` of the stop line,
    counted by a detector (the twin's lane-area detectors). None: no such detector, and the
    controller estimates it from the lane's counts."""

    def lane(self, lane_id: str) -> LaneState:
        return self.lanes.get(lane_id, EMPTY_LANE)


    def phase_demand(self) -> tuple[bool, ...]:
        """Per phase: does any incoming lane of it hold a vehicle (for the max-red rule)."""
        return tuple(any(self.lane(lane).vehicles > 0 for lane in p.incoming) for p in self.phases)


Decisions = dict[str, int]
"""Junction id -> index of the green phase the controller wants shown."""
