"""What a signal controller sees (observations) and what it may ask for (phase decisions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

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


def _movements(state: str, links: Sequence[Sequence[Movement]], chars: str,
               ) -> tuple[Movement, ...]:
    """The movements of the links that show one of `chars` in `state`, in order, once each."""
    return tuple(dict.fromkeys(
        m for i, c in enumerate(state) if c in chars and i < len(links) for m in links[i]))


@dataclass(frozen=True)
class PhaseInfo:
    """A green phase: its SUMO state string, its movements (incoming lane, outgoing lane) and,
    of those, the protected ones (`G`: priority green; `g` yields to conflicting traffic).

    What follows from them is computed once, at creation (controllers read it every decision).
    Not as `cached_property`: compiled (setup.py), that would be computed at every read."""

    state: str
    movements: tuple[Movement, ...]
    duration_s: float = 30.0
    protected: tuple[Movement, ...] = ()
    incoming: tuple[str, ...] = field(init=False, repr=False, compare=False)
    main_movements: tuple[Movement, ...] = field(init=False, repr=False, compare=False)
    """The movements this phase is for: its protected ones (all when none is protected).

    A through phase that lets left turns go permissively (`g`) is not the left turns'
    phase: like RESCO's phase pairs, demand-based controllers count the main movements."""
    main_incoming: tuple[str, ...] = field(init=False, repr=False, compare=False)
    main_lanes_out: tuple[tuple[str, tuple[str, ...]], ...] = field(
        init=False, repr=False, compare=False)
    """Each incoming lane of a main movement with the outgoing lanes it feeds."""
    lanes_out: tuple[tuple[str, tuple[str, ...]], ...] = field(
        init=False, repr=False, compare=False)
    """Each incoming lane with the outgoing lanes it feeds in this phase."""

    def __post_init__(self) -> None:
        main = self.protected or self.movements
        incoming = tuple(dict.fromkeys(lane for lane, _ in self.movements))
        main_incoming = tuple(dict.fromkeys(lane for lane, _ in main))
        derived = {
            "incoming": incoming,
            "main_movements": main,
            "main_incoming": main_incoming,
            "main_lanes_out": tuple((lane, tuple(o for i, o in main if i == lane))
                                    for lane in main_incoming),
            "lanes_out": tuple((lane, tuple(o for i, o in self.movements if i == lane))
                               for lane in incoming),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: the dataclass way to set at init

    @classmethod
    def from_links(cls, state: str, links: Sequence[Sequence[Movement]],
                   duration_s: float = 30.0) -> PhaseInfo:
        """The phase showing `state` over a junction's links (`links[i]`: link i's movements)."""
        return cls(state, _movements(state, links, "Gg"), duration_s,
                   _movements(state, links, "G"))


class JunctionObservation:
    """A signalised junction at time `time`: lanes, green phases, which one shows and since when.

    `phase` is the green phase showing, or None while the signal layer runs a yellow/all-red
    transition (then `target` is the phase it is moving to).

    Read-only (`Final`: mypy says so, and compiled (setup.py) a write raises AttributeError).
    Not a frozen dataclass: its generated `__init__` sets each field through
    `object.__setattr__`, about 0.8 µs an observation, 8 % of grid4x4's control time.
    """

    def __init__(self, junction_id: str, time: float, phases: tuple[PhaseInfo, ...],
                 lanes: Mapping[str, LaneState], phase: int | None, phase_elapsed_s: float,
                 target: int | None = None, approach: Mapping[str, LaneState] | None = None,
                 near: Mapping[str, float] | None = None) -> None:
        self.junction_id: Final = junction_id
        self.time: Final = time
        self.phases: Final = phases
        self.lanes: Final = lanes
        self.phase: Final = phase
        self.phase_elapsed_s: Final = phase_elapsed_s
        self.target: Final = target
        self.approach: Final = approach
        """Per incoming lane, the lane together with the short lanes feeding it within the
        controller's reach (`approach_m`), when the observer can see them: a junction behind a
        1-m stub lane keeps its queue upstream. None: the incoming lanes alone."""
        self.near: Final = near
        """Per incoming lane, the vehicles within the controller's `gap_range_m` of the stop
        line, counted by a detector (the twin's lane-area detectors). None: no such detector,
        and the controller estimates it from the lane's counts."""

    def __repr__(self) -> str:
        return (f"JunctionObservation({self.junction_id!r}, time={self.time}, "
                f"phase={self.phase}, phase_elapsed_s={self.phase_elapsed_s}, "
                f"target={self.target})")

    def lane(self, lane_id: str) -> LaneState:
        return self.lanes.get(lane_id, EMPTY_LANE)


Decisions = dict[str, int]
"""Junction id -> index of the green phase the controller wants shown."""
