"""Lane states read on first look: a decision fetches only the lanes a controller asks for.

A junction that holds a discharging green looks at its own green's lanes alone, and junctions
in a minimum green or transition at none: building every watched lane's state each decision
(~240 on grid4x4) is not needed. Both views are per decision (a fresh object each time) and
answer `get` as a dict would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from cityhub.brain.observations import LaneState

ApproachChain = tuple[float, tuple[tuple[str, float], ...]]
"""An incoming lane's approach length and its feeders with their weights."""

_T = TypeVar("_T")
_new = tuple.__new__


class LaneView(dict[str, LaneState]):
    """Watched lane id (a key of `length`) -> its state now, from its subscription results
    (`fetch`: variable -> value) on first access."""

    __slots__ = ("_fetch", "_length", "_read")

    def __init__(self, fetch: Callable[[str], Mapping[int, Any]], length: Mapping[str, float],
                 variables: tuple[int, int, int]) -> None:
        super().__init__()
        self._fetch, self._length, self._read = fetch, length, variables

    def __missing__(self, lane: str) -> LaneState:
        length = self._length[lane]  # KeyError: not a watched lane
        q, v, w = self._read
        values = self._fetch(lane)
        # tuple.__new__ over three lookups: the cheapest way to build the named tuple
        state: LaneState = _new(LaneState, (values[q], values[v], values[w], length))
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
        fetch, (q, v, w) = self._lanes._fetch, self._lanes._read
        for feeder, weight in chain:  # a feeder's values only: no lane state is needed for it
            up = fetch(feeder)
            queue += weight * up[q]
            vehicles += weight * up[v]
            waiting += weight * up[w]
        state = self[lane] = LaneState(queue, vehicles, waiting, length)
        return state

    def get(self, lane: str, default: _T | None = None) -> LaneState | _T | None:  # type: ignore[override]
        return self[lane] if lane in self._chains else default


class NearView(dict[str, float]):
    """Incoming lane id -> vehicles its stop-line detector counts now, on first access; lanes
    without a detector are absent. Per step (a fresh object each time)."""

    __slots__ = ("_fetch", "_ids", "_var")

    def __init__(self, fetch: Callable[[str], Mapping[int, Any]], ids: Mapping[str, str],
                 variable: int) -> None:
        super().__init__()
        self._fetch, self._ids, self._var = fetch, ids, variable

    def __missing__(self, lane: str) -> float:
        count = self[lane] = float(self._fetch(self._ids[lane])[self._var])
        return count

    def get(self, lane: str, default: _T | None = None) -> float | _T | None:  # type: ignore[override]
        return self[lane] if lane in self._ids else default
