"""The signal layer: turns a controller's phase wishes into safe signal states, second by second.

Rules enforced here, whatever a controller asks: a green phase shows at least `min_green_s`;
every link that loses its green gets `yellow_s` of yellow and then `all_red_s` of red before any
new green; the all-red is held up to `clear_extension_s` longer while vehicles that entered on
the old green are still inside the junction (dynamic all-red extension, when the caller can see
the junction box); a link (one movement's signal) with waiting vehicles is not kept red past
`max_red_s` (the layer serves a phase that greens it, in time, after the current phase's
minimum green and the clearance). Controllers cannot bypass it: the twin and the live loop only
ever apply the states `SignalHead.tick` returns.

The maximum red is a link's, not a phase's: a left turn that goes permissively (`g`) in the
through phase is not red while that phase shows, so its protected-left phase is not forced on
the junction. Counting per phase forced such phases every two minutes whatever the controller
chose (cologne1 under SUMO 1.28, seed 1: `greedy` 27.3 s of delay with it, 19.8 s without).
A permissive green serves a link only while its traffic can use it: when the caller sees the
first vehicle of such a turn stand at the stop line for `stalled_turn_s` (no gap in the
oncoming flow; `SignalHead.stall`), the layer shows a phase that protects it; one waiting
inside the junction gets it at the maximum red. Without this, ingolstadt21 jammed in most
seeds, where two junctions 12 m apart wait on each other's turns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    stalled_turn_s: float = 20.0
    """A permissive turn whose first vehicle has stood at the stop line this long (no gap in
    the oncoming flow) is due a phase that protects it (`SignalHead.stall`)."""

    def __post_init__(self) -> None:
        if self.min_green_s < 1 or self.yellow_s < 1 or self.all_red_s < 0:
            raise ValueError("min_green_s and yellow_s must be >= 1 s, all_red_s >= 0")
        if self.clear_extension_s < 0:
            raise ValueError("clear_extension_s must be >= 0")
        if self.stalled_turn_s < 1:
            raise ValueError("stalled_turn_s must be >= 1 s")
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
_NEVER = float("inf")


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
        width = len(self.phases[0])
        self.greens: tuple[tuple[int, ...], ...] = tuple(
            tuple(i for i, c in enumerate(p) if c in GREEN) for p in self.phases)
        """Per phase, the indexes of the links it greens."""
        self.serving: tuple[tuple[int, ...], ...] = tuple(
            tuple(p for p, links in enumerate(self.greens) if i in links) for i in range(width))
        """Per link, the phases that green it (none: the max-red rule cannot serve it)."""
        self.last_green: list[float] = [now if self.serving[i] else _NEVER
                                        for i in range(width)]
        """Per link, when it was last served (a link no phase greens: never late)."""
        self._green_now = [frozenset(links) for links in self.greens]
        self.stalled: frozenset[int] = frozenset()
        """Links of the green showing that it does not serve (`stall`)."""
        self._oldest = _NEVER
        self._oldest_known = False
        """The earliest `last_green` of the links the current phase does not serve: constant
        while its green shows (only its own links are refreshed), found again after a switch
        or a stall."""
        self.switches = 0
        self.starve_after_s = (rules.max_red_s - rules.yellow_s - rules.all_red_s
                               - rules.clear_extension_s)
        """How long a link with waiting vehicles may stay red before the layer serves it (the
        maximum red less the clearance that precedes its green)."""
        self._transitions: dict[tuple[Stage, int, int], str] = {}

    def request(self, phase: int) -> None:
        """The controller's wish; out-of-range wishes are ignored (the current phase stays)."""
        if 0 <= phase < len(self.phases):
            self.requested = phase

    def green_elapsed(self, now: float) -> float:
        return now - self.since if self.stage is _GREEN else 0.0

    def stall(self, stalled: Mapping[int, float],
              inside: Mapping[int, float] | None = None) -> None:
        """Permissive links of the green showing whose first vehicle has stopped, with when it
        stopped: a turn waiting for a gap in the oncoming flow, at the stop line (`stalled`)
        or pulled forward into the junction (`inside`). Until the next call (or the next
        green) their green does not serve them. A turn stopped at the line is due for the
        max-red rule `stalled_turn_s` after its vehicle stopped (or at the maximum red, if
        sooner); one waiting inside, where a turner normally waits for its gap and leaves at
        the end of the green, at the maximum red after it stopped. The layer then shows a phase
        that protects it. The caller says this at each decision; empty mappings end it."""
        last, threshold = self.last_green, self.starve_after_s
        early = threshold - min(self.rules.stalled_turn_s, threshold)
        due = [(i, since - early) for i, since in stalled.items()]
        if inside:
            due += inside.items()
        for i, due_from in due:
            if 0 <= i < len(last) and due_from < last[i]:
                last[i] = due_from
        self.stalled = frozenset(stalled) | frozenset(inside or ())
        self._oldest_known = False

    def _served(self) -> frozenset[int]:
        """The links the green showing serves: those it greens, less its stalled ones."""
        return self._green_now[self.phase] - self.stalled if self.stalled \
            else self._green_now[self.phase]

    def _starved(self, now: float, demand: Sequence[bool] | None) -> int | None:
        """The phase the max-red rule serves now, if any: one that greens the link red longest
        among the waiting ones past the threshold (protecting it, if a phase does), the one
        greening most such links."""
        if demand is None:
            return None
        threshold, last, showing = self.starve_after_s, self.last_green, self._served()
        late = [i for i in range(min(len(demand), len(last)))
                if demand[i] and i not in showing and now - last[i] >= threshold]
        if not late:
            return None
        oldest = min(late, key=lambda i: (last[i], i))
        waiting, phases, current = frozenset(late), self.phases, self.phase
        candidates = [p for p in self.serving[oldest] if p != current]
        if not candidates:
            return None
        return max(candidates, key=lambda p: (phases[p][oldest] == "G",
                                              sum(1 for i in self.greens[p] if i in waiting), -p))

    def late_links(self, when: float) -> tuple[int, ...]:
        """The links the green showing does not serve that will have been red (or stalled)
        long enough for the max-red rule by `when`: only their demand matters until then."""
        threshold, last = self.starve_after_s, self.last_green
        showing = self._served()
        if not self._oldest_known:
            self._oldest = min([last[i] for i in range(len(last)) if i not in showing],
                               default=_NEVER)
            self._oldest_known = True
        if when - self._oldest < threshold:
            return ()  # none is (the usual case: spare the loop)
        return tuple([i for i in range(len(last))
                      if i not in showing and when - last[i] >= threshold])

    def needs_box(self, now: float) -> bool:
        """Whether `tick(now)` reads `box_clear`: in the all-red, or at the end of the yellow."""
        if self.stage is _ALL_RED:
            return True
        return self.stage is _YELLOW and now - self.since >= self.rules.yellow_s

    def quiet_until(self, demand: Sequence[bool] | None = None) -> float:
        """Until when `tick` (with this `demand` and no new request) would keep showing the same
        green and change nothing that matters: callers may skip ticks before that time.

        A green whose request differs switches once its minimum green is over; one that keeps
        its request only changes when a waiting link reaches the maximum red (the green's own
        links' `last_green` is refreshed by the tick that ends it). A yellow changes nothing
        before its end; the all-red ticks every second (it waits for the box to clear)."""
        if self.stage is _YELLOW:
            return self.since + self.rules.yellow_s
        if self.stage is not _GREEN:
            return float("-inf")
        if self.requested != self.phase:
            return self.since + self.rules.min_green_s
        if demand is None:
            return float("inf")
        last, showing = self.last_green, self._served()
        waits = [last[i] for i in range(min(len(demand), len(last)))
                 if demand[i] and i not in showing]
        return min(waits) + self.starve_after_s if waits else float("inf")

    def tick(self, now: float, demand: Sequence[bool] | None = None,
             box_clear: bool = True) -> str:
        """Advance the machine to `now` and return the signal state to show until the next tick.

        `demand[i]`: a vehicle waits to go through link i (None: no link is waiting for the
        max-red rule). `box_clear` is False while vehicles of the links losing their green are
        still inside the junction: the all-red then lasts until they are out, or
        `clear_extension_s` more."""
        rules = self.rules
        if self.stage is _YELLOW and now - self.since >= rules.yellow_s:
            self.stage, self.since = _ALL_RED, now
        red_for = now - self.since
        if self.stage is _ALL_RED and red_for >= rules.all_red_s and (
                box_clear or red_for >= rules.all_red_s + rules.clear_extension_s):
            self.stage, self.since, self.phase = _GREEN, now, self.target
            self.switches += 1
            self.stalled = frozenset()
            self._oldest_known = False
        if self.stage is _GREEN:
            last, stalled = self.last_green, self.stalled
            for i in self.greens[self.phase]:
                if i not in stalled:
                    last[i] = now
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
