"""Signal controllers, registered by name: observations in, phase decisions out.

Built-ins register as a plug-in would, with `register(cls)`, but after the class rather than
as its decorator: they are compiled (setup.py), and mypyc compiles a decorated class as a plain
Python class. A plug-in may use `@register`. A controller never touches a simulator or the
hub: the twin (`cityhub.sandbox.twin`) and the live loop (`cityhub.sandbox.live`) build
`JunctionObservation`s and pass every decision through the signal layer (`brain.safety`).
`fixed` and `actuated` also name a SUMO program (`native_program`): in the twin they run the
network's own static program or SUMO's own actuation; live, their `decide` stands in for them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from mypy_extensions import mypyc_attr

from cityhub.brain.observations import Decisions, JunctionObservation, PhaseInfo


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled (setup.py); plug-ins subclass it
class Controller:
    """Base of every controller: a name, a version, a configuration and `decide`."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1.0"
    native_program: ClassVar[str | None] = None
    resco_timing: ClassVar[bool] = False
    """True for RESCO's baselines: in the twin they decide on the scenario's RESCO step."""
    defaults: ClassVar[dict[str, float]] = {}

    def __init__(self, **config: float) -> None:
        unknown = set(config) - set(self.defaults)
        if unknown:
            raise ValueError(f"unknown setting(s) for {self.name}: {', '.join(sorted(unknown))}")
        self.config: dict[str, float] = {**self.defaults, **config}

    @property
    def decision_interval_s(self) -> float:
        return float(self.config.get("decision_interval_s", 10.0))

    @property
    def identity(self) -> str:
        """`name@version#hash` of the configuration: what the algorithm registry approves."""
        digest = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()
        return f"{self.name}@{self.version}#{digest[:10]}"

    def needs_observation(self, green: bool, elapsed_s: float) -> bool:
        """Whether a junction showing a green (`green`, for `elapsed_s`) or in a transition
        needs observing now. A controller that says no would keep its junction's course
        (current green or transition target): observers may then skip the junction."""
        return True

    @property
    def near_range_m(self) -> float:
        """How far from the stop line the controller wants vehicles counted by detectors
        (`JunctionObservation.near`; 0: not at all)."""
        return 0.0

    @property
    def gap_check_s(self) -> float:
        """How often, between decisions, an observer with stop-line detectors should offer
        `gapped_out` a look at each green (0: never)."""
        return float(self.config.get("gap_check_s", 0.0))

    def gapped_out(self, phase: PhaseInfo, elapsed_s: float, near: Mapping[str, float],
                   incoming: tuple[str, ...]) -> bool:
        """Between decisions: whether the green `phase`, shown for `elapsed_s`, is no longer
        used (`near`: vehicles within reach of the stop line per incoming lane), so that its
        junction should be observed and decided now rather than at the next decision."""
        return False

    def decide(self, observations: Mapping[str, JunctionObservation]) -> Decisions:
        return {jid: self.choose(obs) for jid, obs in observations.items()}

    def choose(self, obs: JunctionObservation) -> int:  # pragma: no cover - overridden
        raise NotImplementedError


_REGISTRY: dict[str, type[Controller]] = {}
_VERSIONS: dict[str, type[Controller]] = {}


def register_version(cls: type[Controller]) -> type[Controller]:
    """Class decorator: make a controller available as `name@version` only (a version that is
    not, or not yet, the one its plain name gives)."""
    if not cls.name:
        raise ValueError("a registered controller needs a name")
    _VERSIONS[f"{cls.name}@{cls.version}"] = cls
    return cls


def register(cls: type[Controller]) -> type[Controller]:
    """Class decorator: make a controller available under its `name` (and `name@version`)."""
    register_version(cls)
    _REGISTRY[cls.name] = cls
    return cls


def controller_names() -> list[str]:
    """Plain names (each its default version), then every `name@version`."""
    return sorted(_REGISTRY) + sorted(_VERSIONS)


def create_controller(name: str, **config: float) -> Controller:
    """The registered controller `name` (or `name@version`), configured; ValueError names the
    known ones."""
    cls = _REGISTRY.get(name) or _VERSIONS.get(name)
    if cls is None:
        raise ValueError(f"unknown controller {name!r}; known: {', '.join(controller_names())}")
    return cls(**config)


def _current(obs: JunctionObservation) -> int:
    return obs.phase if obs.phase is not None else (obs.target or 0)


class FixedTime(Controller):
    """The network's own fixed-time program (live: cycles the green phases by their durations)."""

    name = "fixed"
    native_program = "static"
    defaults: ClassVar[dict[str, float]] = {"decision_interval_s": 1.0}

    def choose(self, obs: JunctionObservation) -> int:
        current = _current(obs)
        if obs.phase is not None and obs.phase_elapsed_s >= obs.phases[current].duration_s:
            return (current + 1) % len(obs.phases)
        return current


register(FixedTime)


class Actuated(Controller):
    """SUMO's own gap-based actuation (live: extend while vehicles arrive, up to max green)."""

    name = "actuated"
    native_program = "actuated"
    defaults: ClassVar[dict[str, float]] = {
        "decision_interval_s": 1.0, "max_green_s": 60.0, "min_green_s": 5.0,
    }

    def choose(self, obs: JunctionObservation) -> int:
        current = _current(obs)
        if obs.phase is None or obs.phase_elapsed_s < self.config["min_green_s"]:
            return current
        arriving = sum(obs.lane(lane).moving for lane in obs.phases[current].incoming)
        if arriving > 0 and obs.phase_elapsed_s < self.config["max_green_s"]:
            return current
        return (current + 1) % len(obs.phases)


register(Actuated)


def _argmax(scores: list[float], prefer: int) -> int:
    best = max(scores)
    return prefer if scores[prefer] >= best else scores.index(best)


_Plan = TypeVar("_Plan")

LanePlan = tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]
"""A junction's distinct lanes, and per phase the indexes of its lanes among them in order."""


def lane_plan(phases: tuple[PhaseInfo, ...],
              lanes_of: Callable[[PhaseInfo], tuple[str, ...]]) -> LanePlan:
    """The lanes `lanes_of` names for each phase, each read once per decision: a lane that
    several phases or movements share is scored once, and each phase sums its own in order."""
    index: dict[str, int] = {}
    per_phase = tuple(tuple(index.setdefault(lane, len(index)) for lane in lanes_of(phase))
                      for phase in phases)
    return tuple(index), per_phase


class PhaseCache(Generic[_Plan]):
    """Per junction, what `build` derives from its phases, kept for as long as its observations
    carry the same phases (the same tuple): a controller's plans, made once, not per decision."""

    def __init__(self, build: Callable[[tuple[PhaseInfo, ...]], _Plan]) -> None:
        self._build = build
        self._cached: dict[str, tuple[tuple[PhaseInfo, ...], _Plan]] = {}

    def get(self, obs: JunctionObservation) -> _Plan:
        cached = self._cached.get(obs.junction_id)
        if cached is not None and cached[0] is obs.phases:
            return cached[1]
        plan = self._build(obs.phases)
        self._cached[obs.junction_id] = (obs.phases, plan)
        return plan


class _Scoring(Controller):
    """A baseline that scores each phase by summing per-lane figures (`lane_plan`)."""

    def __init__(self, **config: float) -> None:
        super().__init__(**config)
        self._plans = PhaseCache(lambda phases: lane_plan(phases, self._lanes_of))

    def _lanes_of(self, phase: PhaseInfo) -> tuple[str, ...]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _plan(self, obs: JunctionObservation) -> LanePlan:
        return self._plans.get(obs)


class Greedy(_Scoring):
    """RESCO's MAXWAVE: serve the phase whose main movements hold most queued plus approaching
    vehicles within the detection range (RESCO: 200 m)."""

    name = "greedy"
    resco_timing = True
    defaults: ClassVar[dict[str, float]] = {"decision_interval_s": 10.0, "range_m": 200.0}

    def _lanes_of(self, phase: PhaseInfo) -> tuple[str, ...]:
        return phase.main_incoming

    def choose(self, obs: JunctionObservation) -> int:
        reach = self.config["range_m"]
        lanes, per_phase = self._plan(obs)
        detected = [obs.lane(lane).detected(reach) for lane in lanes]
        scores = []
        for indexes in per_phase:
            total = 0.0
            for k in indexes:
                total += detected[k]
            scores.append(total)
        return _argmax(scores, _current(obs))


register(Greedy)


class MaxPressure(_Scoring):
    """Max-pressure (Varaiya; RESCO's MAXPRESSURE): serve the phase whose main movements have the
    largest upstream-minus-downstream queue (halted vehicles)."""

    name = "max-pressure"
    resco_timing = True
    defaults: ClassVar[dict[str, float]] = {"decision_interval_s": 10.0}

    def _lanes_of(self, phase: PhaseInfo) -> tuple[str, ...]:
        return tuple(lane for movement in phase.main_movements for lane in movement)

    def choose(self, obs: JunctionObservation) -> int:
        lanes, per_phase = self._plan(obs)
        queue = [obs.lane(lane).queue for lane in lanes]
        scores = []
        for indexes in per_phase:  # (incoming, outgoing) of each main movement, in turn
            total = 0.0
            for n in range(0, len(indexes), 2):
                total += queue[indexes[n]] - queue[indexes[n + 1]]
            scores.append(total)
        return _argmax(scores, _current(obs))


register(MaxPressure)


ControllerFactory = Callable[..., Controller]


def describe(controller: Controller) -> dict[str, Any]:
    """What the algorithm registry stores about a controller version."""
    return {
        "name": controller.name,
        "version": controller.version,
        "identity": controller.identity,
        "config": dict(controller.config),
        "native_program": controller.native_program,
    }
