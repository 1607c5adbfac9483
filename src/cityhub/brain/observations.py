"""What a signal controller sees (observations) and what it may ask for (phase decisions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class LaneState:
    """One lane at one instant: halted vehicles, all vehicles, their summed waiting time."""

    queue: int
    vehicles: int
    waiting_s: float = 0.0
    length_m: float = 100.0

    @property
    def moving(self) -> int:
        """Vehicles on the lane that are not halted (approaching the stop line)."""
        return max(0, self.vehicles - self.queue)

    @property
    def fill(self) -> float:
        """Share of the lane's storage taken (7.5 m per vehicle), 0-1."""
        return min(1.0, self.vehicles * 7.5 / max(self.length_m, 7.5))


EMPTY_LANE = LaneState(0, 0)


@dataclass(frozen=True)
class PhaseInfo:
    """A green phase: its SUMO state string, its movements (incoming lane, outgoing lane)."""

    state: str
    movements: tuple[tuple[str, str], ...]
    duration_s: float = 30.0

    @cached_property
    def incoming(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(lane for lane, _ in self.movements))

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
    extra: Mapping[str, float] = field(default_factory=dict)

    def lane(self, lane_id: str) -> LaneState:
        return self.lanes.get(lane_id, EMPTY_LANE)

    def phase_demand(self) -> tuple[bool, ...]:
        """Per phase: does any incoming lane of it hold a vehicle (for the max-red rule)."""
        return tuple(any(self.lane(lane).vehicles > 0 for lane in p.incoming) for p in self.phases)


Decisions = dict[str, int]
"""Junction id -> index of the green phase the controller wants shown."""
