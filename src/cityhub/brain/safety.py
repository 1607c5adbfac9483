"""The signal layer: turns a controller's phase wishes into safe signal states, second by second.

Rules enforced here, whatever a controller asks: a green phase shows at least `min_green_s`;
every link that loses its green gets `yellow_s` of yellow and then `all_red_s` of red before any
new green; the all-red is held up to `clear_extension_s` longer while vehicles that entered on
the old green are still inside the junction (dynamic all-red extension, when the caller can see
the junction box); a phase with waiting vehicles is not kept red past `max_red_s` (the layer
serves it in time, after the current phase's minimum green and the clearance). Controllers
cannot bypass it: the twin and the live loop only ever apply the states `SignalHead.tick`
returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

GREEN = frozenset("Gg")


@dataclass(frozen=True)
class SafetyRules:
    """Timing limits of the signal layer, in seconds."""

    min_green_s: float = 5.0
    yellow_s: float = 3.0
    all_red_s: float = 1.0
    max_red_s: float = 120.0
    clear_extension_s: float = 2.0

    def __post_init__(self) -> None:
        if self.min_green_s < 1 or self.yellow_s < 1 or self.all_red_s < 0:
            raise ValueError("min_green_s and yellow_s must be >= 1 s, all_red_s >= 0")
        if self.clear_extension_s < 0:
            raise ValueError("clear_extension_s must be >= 0")
        if self.max_red_s < (self.min_green_s + self.yellow_s + self.all_red_s
                             + self.clear_extension_s):
            raise ValueError("max_red_s must exceed min green plus clearance")


class Stage(Enum):
    GREEN = "green"
    YELLOW = "yellow"
    ALL_RED = "all-red"


# The members as module constants: `Stage.YELLOW` goes through the enum's class machinery
# (about 0.13 µs a lookup), and the twin ticks heads some 15,000 times an hour.
_GREEN, _YELLOW, _ALL_RED = Stage.GREEN, Stage.YELLOW, Stage.ALL_RED


def yellow_state(current: str, target: str) -> str:
    """Links green now and not green next turn yellow; links green in both stay; others red."""
    out = []
    for now, nxt in zip(current, target, strict=True):
        if now in GREEN:
            out.append(now if nxt in GREEN else "y")
        else:
            out.append("r")
    return "".join(out)


def all_red_state(current: str, target: str) -> str:
    """Only links green in both phases keep their green; everything else is red."""
    return "".join(
        now if now in GREEN and nxt in GREEN else "r"
        for now, nxt in zip(current, target, strict=True)
    )


class SignalHead:
    """The safe state machine of one junction's signal; `tick` once per simulated second."""

    def __init__(self, phases: Sequence[str], rules: SafetyRules, now: float = 0.0,
                 start: int = 0) -> None:
        if not phases:
            raise ValueError("a signal needs at least one green phase")
        if len({len(p) for p in phases}) != 1:
            raise ValueError("all phase states must have the same length")
        self.phases = tuple(phases)
        self.rules = rules
        self.stage = _GREEN
        self.phase = start
        self.target = start
        self.requested = start
        self.since = now
        self.last_green = [now] * len(phases)
        self.switches = 0
        self.starve_after_s = (rules.max_red_s - rules.yellow_s - rules.all_red_s
                               - rules.clear_extension_s)
        """How long a phase with waiting vehicles may stay red before the layer serves it (the
        maximum red less the clearance that precedes its green)."""
        self._transitions: dict[tuple[Stage, int, int], str] = {}

    def request(self, phase: int) -> None:
        """The controller's wish; out-of-range wishes are ignored (the current phase stays)."""
        if 0 <= phase < len(self.phases):
            self.requested = phase

    def green_elapsed(self, now: float) -> float:
        return now - self.since if self.stage is _GREEN else 0.0

    def _starved(self, now: float, demand: Sequence[bool] | None) -> int | None:
        threshold = self.starve_after_s
        if demand is None or now - min(self.last_green) < threshold:
            return None
        waiting = [
            (now - self.last_green[p], p)
            for p in range(len(self.phases))
            if p != self.phase and p < len(demand) and demand[p]
            and now - self.last_green[p] >= threshold
        ]
        return max(waiting)[1] if waiting else None

    def late_phases(self, when: float) -> tuple[int, ...]:
        """The phases other than the current one that will have been red long enough for the
        max-red rule by `when`: only their demand matters until then."""
        threshold, last, current = self.starve_after_s, self.last_green, self.phase
        if when - min(last) < threshold:
            return ()  # none is (the usual case: spare the loop)
        return tuple([p for p in range(len(last)) if p != current and when - last[p] >= threshold])

    def needs_box(self, now: float) -> bool:
        """Whether `tick(now)` reads `box_clear`: in the all-red, or at the end of the yellow."""
        if self.stage is _ALL_RED:
            return True
        return self.stage is _YELLOW and now - self.since >= self.rules.yellow_s

    def quiet_until(self, demand: Sequence[bool] | None = None) -> float:
        """Until when `tick` (with this `demand` and no new request) would keep showing the same
        green and change nothing that matters: callers may skip ticks before that time.

        A green whose request differs switches once its minimum green is over; one that keeps
        its request only changes when a waiting phase reaches the maximum red (the green's own
        `last_green` is refreshed by the tick that ends it). A yellow changes nothing before
        its end; the all-red ticks every second (it waits for the box to clear)."""
        if self.stage is _YELLOW:
            return self.since + self.rules.yellow_s
        if self.stage is not _GREEN:
            return float("-inf")
        if self.requested != self.phase:
            return self.since + self.rules.min_green_s
        if demand is None:
            return float("inf")
        waits = [self.last_green[p] for p in range(len(self.phases))
                 if p != self.phase and p < len(demand) and demand[p]]
        return min(waits) + self.starve_after_s if waits else float("inf")

    def tick(self, now: float, demand: Sequence[bool] | None = None,
             box_clear: bool = True) -> str:
        """Advance the machine to `now` and return the signal state to show until the next tick.

        `box_clear` is False while vehicles of the links losing their green are still inside
        the junction: the all-red then lasts until they are out, or `clear_extension_s` more."""
        rules = self.rules
        if self.stage is _YELLOW and now - self.since >= rules.yellow_s:
            self.stage, self.since = _ALL_RED, now
        red_for = now - self.since
        if self.stage is _ALL_RED and red_for >= rules.all_red_s and (
                box_clear or red_for >= rules.all_red_s + rules.clear_extension_s):
            self.stage, self.since, self.phase = _GREEN, now, self.target
            self.switches += 1
        if self.stage is _GREEN:
            self.last_green[self.phase] = now
            if now - self.since >= rules.min_green_s:
                wanted = self._starved(now, demand)
                if wanted is None:
                    wanted = self.requested
                if wanted != self.phase:
                    self.stage, self.since, self.target = _YELLOW, now, wanted
        if self.stage is _GREEN:
            return self.phases[self.phase]
        key = (self.stage, self.phase, self.target)
        state = self._transitions.get(key)
        if state is None:
            current, target = self.phases[self.phase], self.phases[self.target]
            make = yellow_state if self.stage is _YELLOW else all_red_state
            state = self._transitions[key] = make(current, target)
        return state
