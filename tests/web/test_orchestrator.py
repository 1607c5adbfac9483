"""The demo's orchestrator: start in order, stop in reverse, a failed start undoes the rest."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cityhub.web.orchestrator import Component, Orchestrator, StartError


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def recording(log: list[str], name: str, fail: bool = False) -> Component:
    def start() -> str:
        if fail:
            raise OSError(f"port of {name} taken")
        log.append(f"start {name}")
        return f"at {name}"

    return Component(name, start, lambda: log.append(f"stop {name}"))


def test_components_start_in_order_and_stop_in_reverse() -> None:
    log: list[str] = []
    orchestrator = Orchestrator(quiet())
    for name in ("hub", "broker", "edge"):
        orchestrator.add(recording(log, name))
    started = orchestrator.start_all()
    assert [(s.name, s.where) for s in started] == [("hub", "at hub"), ("broker", "at broker"),
                                                    ("edge", "at edge")]
    orchestrator.stop_all()
    assert log == ["start hub", "start broker", "start edge", "stop edge", "stop broker",
                   "stop hub"]


def test_a_component_that_cannot_start_stops_those_already_started() -> None:
    log: list[str] = []
    orchestrator = Orchestrator(quiet())
    orchestrator.add(recording(log, "hub"))
    orchestrator.add(recording(log, "broker", fail=True))
    orchestrator.add(recording(log, "edge"))
    with pytest.raises(StartError, match="broker did not start: port of broker taken"):
        orchestrator.start_all()
    assert log == ["start hub", "stop hub"]


def test_a_failing_stop_does_not_keep_the_others_running() -> None:
    log: list[str] = []
    orchestrator = Orchestrator(quiet())
    orchestrator.add(recording(log, "hub"))
    orchestrator.add(Component("twin", lambda: "sumo", lambda: 1 / 0))
    orchestrator.start_all()
    orchestrator.stop_all()
    assert log == ["start hub", "stop hub"]


def test_names_are_unique() -> None:
    orchestrator = Orchestrator(quiet())
    orchestrator.add(Component("hub", lambda: "x"))
    with pytest.raises(ValueError, match="twice"):
        orchestrator.add(Component("hub", lambda: "y"))
