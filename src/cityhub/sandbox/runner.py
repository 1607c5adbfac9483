"""One run of a scenario with a controller: simulate, measure, write the files. Meant to be the
only simulation in its process (`cityhub sandbox run` or a bench worker)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityhub.brain.controllers import Controller, create_controller
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
    all_red_s: float | None = None


def rules_for(scenario: Scenario, all_red_s: float | None = None) -> SafetyRules:
    """The signal layer's timing: the scenario's yellow (RESCO's), the network programs' own
    all-red clearance (`network_all_red_s`) unless `all_red_s` is given, cityhub's minimum green
    and maximum red."""
    red = scenario.all_red_s if all_red_s is None else all_red_s
    return SafetyRules(yellow_s=scenario.yellow_s, all_red_s=red)


def controller_for(spec: RunSpec, scenario: Scenario) -> Controller:
    """The configured controller; RESCO's baselines decide on the scenario's RESCO step
    (10 s, arterial4x4 5 s) unless the configuration says otherwise."""
    config = dict(spec.config)
    controller = create_controller(spec.controller, **config)
    if controller.resco_timing and "decision_interval_s" not in config:
        controller.config["decision_interval_s"] = scenario.decision_step_s
    return controller


def run(spec: RunSpec, progress: Callable[[float, float], None] | None = None,
        observer: Observer | None = None) -> dict[str, Any]:
    """Run `spec` and return its metrics (also written to spec.out)."""
    scenario = resolve(spec.scenario, spec.scenario_dir)
    controller = controller_for(spec, scenario)
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
    rules = rules_for(scenario, spec.all_red_s)
    record, tripinfo = simulate(scenario, controller, spec.seed, end, spec.out, rules,
                                spec.sumo_home, tick, observer, additional)
    metrics = summarise(record, tripinfo)
    metrics.update(scenario=scenario.name, controller=spec.controller,
                   controller_identity=controller.identity, seed=spec.seed,
                   seconds=end - scenario.begin)
    write_outputs(spec.out, metrics, record)
    return metrics
