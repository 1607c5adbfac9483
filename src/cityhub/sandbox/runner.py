"""One run of a scenario with a controller: simulate, measure, write the files. Meant to be the
only simulation in its process (`cityhub sandbox run` or a bench worker)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityhub.brain.controllers import create_controller
from cityhub.brain.safety import SafetyRules
from cityhub.sandbox.metrics import summarise, write_outputs
from cityhub.sandbox.scenarios import Scenario, resolve
from cityhub.sandbox.twin import Observer, simulate


@dataclass(frozen=True)
class RunSpec:
    """What to run: scenario (name or path), controller, seed, length, where to write."""

    scenario: str
    controller: str
    seed: int = 1
    seconds: float | None = None
    out: Path = Path("sandbox-out")
    sumo_home: Path | None = None
    scenario_dir: Path | None = None
    config: tuple[tuple[str, float], ...] = ()
    loops: bool = False


def rules_for(scenario: Scenario) -> SafetyRules:
    """The signal layer's timing: the scenario's yellow, cityhub's defaults otherwise."""
    return SafetyRules(yellow_s=scenario.yellow_s)


def run(spec: RunSpec, progress: Callable[[float, float], None] | None = None,
        observer: Observer | None = None) -> dict[str, Any]:
    """Run `spec` and return its metrics (also written to spec.out)."""
    scenario = resolve(spec.scenario, spec.scenario_dir)
    controller = create_controller(spec.controller, **dict(spec.config))
    end = scenario.end if spec.seconds is None else scenario.begin + spec.seconds
    tick = None
    if progress is not None:
        def tick(now: float) -> None:
            progress(now - scenario.begin, end - scenario.begin)
    additional = []
    if spec.loops:
        from cityhub.sandbox.publisher import induction_loops

        spec.out.mkdir(parents=True, exist_ok=True)
        additional.append(induction_loops(scenario.net, spec.out / "loops.add.xml"))
    record, tripinfo = simulate(scenario, controller, spec.seed, end, spec.out,
                                rules_for(scenario), spec.sumo_home, tick, observer, additional)
    metrics = summarise(record, tripinfo)
    metrics.update(scenario=scenario.name, controller=controller.name,
                   controller_identity=controller.identity, seed=spec.seed,
                   seconds=end - scenario.begin)
    write_outputs(spec.out, metrics, record)
    return metrics
