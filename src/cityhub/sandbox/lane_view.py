"""Lane states read on first look: a decision reads only the lanes a controller asks for.

A junction that holds a discharging green looks at its own green's lanes alone, and junctions
in a minimum green or transition at none: building every watched lane's state each decision
(~240 on grid4x4) is not needed. Both views are per decision (a fresh object each time) and
answer `get` as a dict would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from cityhub.brain.observations import LaneState

ApproachChain = tuple[float, tuple[tuple[str, float], ...]]
"""An incoming lane's approach length and its feeders with their weights."""

LaneReads = tuple[Callable[[str], int], Callable[[str], int], Callable[[str], float]]
"""Lane id -> its halted vehicles, its vehicles, their summed waiting time now
(`Simulator.lane_reads`)."""

_T = TypeVar("_T")
_new = tuple.__new__


class LaneView(dict[str, LaneState]):
    """Watched lane id (a key of `length`) -> its state now, read on first access (`reads`).

    A lane without vehicles has no halted vehicle and no waiting time (SUMO counts all three
    over the same vehicles): its queue and waiting time are not asked for."""

    __slots__ = ("_count", "_halting", "_length", "_waiting")

    def __init__(self, reads: LaneReads, length: Mapping[str, float]) -> None:
        super().__init__()
        self._halting, self._count, self._waiting = reads
        self._length = length

    def __missing__(self, lane: str) -> LaneState:
        length = self._length[lane]  # KeyError: not a watched lane
        vehicles = self._count(lane)
        # tuple.__new__: the cheapest way to build the named tuple
        state: LaneState = _new(LaneState, (self._halting(lane), vehicles, self._waiting(lane),
                                            length) if vehicles else (0, 0, 0.0, length))
        self[lane] = state
        return state

    def get(self, lane: str, default: _T | None = None) -> LaneState | _T | None:  # type: ignore[override]
        return self[lane] if lane in self._length else default


class ApproachView(dict[str, LaneState]):
    """Incoming lane id -> the lane summed with its (weighted) upstream feeders, on first access;
    lanes without feeders are absent."""

    __slots__ = ("_chains", "_lanes")

    def __init__(self, chains: Mapping[str, ApproachChain], lanes: LaneView) -> None:
        super().__init__()
        self._chains, self._lanes = chains, lanes

    def __missing__(self, lane: str) -> LaneState:
        length, chain = self._chains[lane]
        queue, vehicles, waiting, _ = self._lanes[lane]
        lanes = self._lanes
        count, halting, waited = lanes._count, lanes._halting, lanes._waiting
        for feeder, weight in chain:  # a feeder's values only: no lane state is needed for it
            up = count(feeder)
            if up:  # an empty feeder adds nothing (no queue, no waiting time either)
                queue += weight * halting(feeder)
                vehicles += weight * up
                waiting += weight * waited(feeder)
        state = self[lane] = LaneState(queue, vehicles, waiting, length)
        return state

    def get(self, lane: str, default: _T | None = None) -> LaneState | _T | None:  # type: ignore[override]
        return self[lane] if lane in self._chains else default


class NearView(dict[str, float]):
    """Incoming lane id -> vehicles its stop-line detector counts now, on first access; lanes
    without a detector are absent. Per step (a fresh object each time)."""

    __slots__ = ("_ids", "_read")

    def __init__(self, read: Callable[[str], float], ids: Mapping[str, str]) -> None:
        super().__init__()
        self._read, self._ids = read, ids

    def __missing__(self, lane: str) -> float:
        count = self[lane] = float(self._read(self._ids[lane]))
        return count

    def get(self, lane: str, default: _T | None = None) -> float | _T | None:  # type: ignore[override]
        return self[lane] if lane in self._ids else default
