"""Controllers: registered by name, observations in, decisions out."""

from __future__ import annotations

import pytest

from cityhub.brain.controllers import controller_names, create_controller
from cityhub.brain.observations import JunctionObservation, LaneState, PhaseInfo

NS = PhaseInfo("GGrr", (("n_in", "s_out"), ("s_in", "n_out")), 30)
EW = PhaseInfo("rrGG", (("e_in", "w_out"), ("w_in", "e_out")), 30)


def _obs(lanes: dict[str, LaneState], phase: int = 0, elapsed: float = 20) -> JunctionObservation:
    return JunctionObservation("J", 100.0, (NS, EW), lanes, phase, elapsed)


def test_every_issue_controller_is_registered() -> None:
    assert {"fixed", "actuated", "greedy", "max-pressure", "cityhub"} <= set(controller_names())


def test_unknown_names_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="known: "):
        create_controller("nope")
    with pytest.raises(ValueError, match="unknown setting"):
        create_controller("cityhub", colour=1)


@pytest.mark.parametrize("name", ["greedy", "max-pressure", "cityhub"])
def test_adaptive_controllers_serve_the_loaded_approach(name: str) -> None:
    lanes = {"e_in": LaneState(12, 14, 300.0), "w_in": LaneState(8, 9, 200.0),
             "n_in": LaneState(0, 1)}
    assert create_controller(name).decide({"J": _obs(lanes)}) == {"J": 1}


def test_cityhub_holds_green_against_a_slightly_larger_queue() -> None:
    # Switching costs yellow and all-red: a marginally longer queue elsewhere is not worth it.
    lanes = {"n_in": LaneState(5, 6), "e_in": LaneState(6, 6)}
    assert create_controller("cityhub").choose(_obs(lanes)) == 0


def test_cityhub_does_not_send_traffic_into_a_full_exit() -> None:
    lanes = {"e_in": LaneState(10, 10), "w_out": LaneState(14, 14, length_m=100),
             "n_in": LaneState(2, 3)}
    # e_in feeds only w_out, which is full: serving it would block the junction.
    assert create_controller("cityhub").choose(_obs(lanes)) == 0


def test_cityhub_version_identity_changes_with_configuration() -> None:
    a, b = create_controller("cityhub"), create_controller("cityhub", switch_margin=3)
    assert a.identity.startswith("cityhub@2.2#")
    assert a.identity != b.identity


def test_fixed_cycles_by_program_durations_when_live() -> None:
    fixed = create_controller("fixed")
    assert fixed.choose(_obs({}, phase=0, elapsed=10)) == 0
    assert fixed.choose(_obs({}, phase=0, elapsed=30)) == 1
