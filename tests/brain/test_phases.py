"""Phases read from a junction's links, and how the demand-based controllers count them
(`cityhub`'s rules as v2.0 states them: v2.1 and v2.2, the default, build on them)."""

from __future__ import annotations

from cityhub.brain.controllers import create_controller
from cityhub.brain.observations import JunctionObservation, LaneState, PhaseInfo

# A 2-phase junction where each phase feeds every exit once (netgenerate's default grids):
# the downstream term of lane-count max-pressure is then the same for both phases.
LINKS = [[("n", "e_out")], [("n", "s_out")], [("s", "w_out")], [("s", "n_out")],
         [("e", "s_out")], [("e", "w_out")], [("w", "n_out")], [("w", "e_out")]]
NS = PhaseInfo.from_links("GGGGrrrr", LINKS)
EW = PhaseInfo.from_links("rrrrGGGG", LINKS)


def _obs(lanes: dict[str, LaneState], phase: int = 0) -> JunctionObservation:
    return JunctionObservation("J", 0.0, (NS, EW), lanes, phase, 15.0)


def test_phases_know_their_protected_movements() -> None:
    phase = PhaseInfo.from_links("Gg", [[("a", "x")], [("b", "y")]])
    assert phase.movements == (("a", "x"), ("b", "y"))
    assert phase.protected == (("a", "x"),)
    assert phase.main_incoming == ("a",)
    # A phase with only permissive greens is still for those movements.
    assert PhaseInfo.from_links("gr", [[("a", "x")], [("b", "y")]]).main_incoming == ("a",)


def test_greedy_and_max_pressure_differ_where_only_queues_tell_them_apart() -> None:
    # North-south holds many approaching (moving) vehicles, east-west a short standing queue:
    # MAXWAVE counts queued + approaching, max-pressure counts queues (RESCO's definitions).
    lanes = {"n": LaneState(0, 9, length_m=150), "s": LaneState(0, 8, length_m=150),
             "e": LaneState(4, 4), "w": LaneState(3, 3)}
    assert create_controller("greedy").choose(_obs(lanes, phase=1)) == 0
    assert create_controller("max-pressure").choose(_obs(lanes, phase=0)) == 1


def test_greedy_sees_only_the_detection_range() -> None:
    # 10 moving vehicles spread over 1 km: a 200-m detector sees about 2 of them.
    lane = LaneState(1, 11, length_m=1000)
    assert lane.detected(200) == 1 + 10 * 0.2


def test_permissive_lefts_do_not_make_a_phase_the_left_turn_phase() -> None:
    # Through phase lets the left-turn lane go permissively (g); the protected left phase (G)
    # is what greedy chooses when only the left-turn lane is loaded.
    links = [[("thru", "x")], [("left", "y")]]
    through = PhaseInfo.from_links("Gg", links)
    left = PhaseInfo.from_links("rG", links)
    lanes = {"left": LaneState(6, 6), "thru": LaneState(1, 1)}
    obs = JunctionObservation("J", 0.0, (through, left), lanes, 0, 30.0)
    assert create_controller("greedy").choose(obs) == 1


def test_cityhub_gaps_out_when_its_green_is_no_longer_used() -> None:
    # Nothing left near the north-south stop lines, a few vehicles waiting east-west: switch,
    # even though the north-south lanes are long and vehicles are still far upstream.
    lanes = {"n": LaneState(0, 2, length_m=600), "e": LaneState(2, 2)}
    cityhub = create_controller("cityhub@2.0")
    assert cityhub.choose(_obs(lanes)) == 1
    # While the green still discharges a queue, a similar demand elsewhere does not switch it.
    lanes = {"n": LaneState(3, 4), "e": LaneState(3, 3)}
    assert cityhub.choose(_obs(lanes)) == 0
    # ... until its maximum green (60 s) while the other phase waits.
    late = JunctionObservation("J", 0.0, (NS, EW), lanes, 0, 60.0)
    assert cityhub.choose(late) == 1


def test_cityhub_does_not_chase_vehicles_both_phases_serve() -> None:
    # One shared lane (through + left) is served by the through phase (left permissive) and by
    # the protected-left phase alike: its queue is no reason to switch between the two, while
    # the through-only lane is. (v1.1 counted the shared lane for both and switched back and
    # forth, a yellow each time: cologne8's 71.6 s against greedy's 33.8 s.)
    links = [[("shared", "x")], [("shared", "left_out")], [("thru", "x")], [("left", "y")]]
    through = PhaseInfo.from_links("GgGg", links)
    left = PhaseInfo.from_links("rGrG", links)
    cityhub = create_controller("cityhub@2.0")

    def choose(lanes: dict[str, LaneState]) -> int:
        return cityhub.choose(JunctionObservation("J", 0.0, (through, left), lanes, 0, 15.0))

    assert choose({"shared": LaneState(8, 8), "thru": LaneState(2, 3)}) == 0
    # A queue on the dedicated left-turn lane, which the through phase only lets go
    # permissively, is what the protected-left phase is for.
    assert choose({"shared": LaneState(8, 8), "thru": LaneState(0, 0),
                   "left": LaneState(6, 6)}) == 1


def test_cityhub_sees_the_queue_behind_a_stub_lane() -> None:
    # The east approach reaches the junction over a 1-m stub lane: the lane alone shows one
    # vehicle, the approach (stub plus feeders, built by the twin) shows the queue of twelve.
    stub = {"n": LaneState(2, 3), "e": LaneState(1, 1, length_m=1.0)}
    cityhub = create_controller("cityhub@2.0")
    assert cityhub.choose(_obs(stub)) == 0
    approach = {"e": LaneState(12, 13, 300.0, length_m=150.0)}
    seen = JunctionObservation("J", 0.0, (NS, EW), stub, 0, 15.0, approach=approach)
    assert cityhub.choose(seen) == 1


def test_cityhub_weighs_long_waits_more_than_in_proportion() -> None:
    # North-south: 7 vehicles that just stopped (2 s each). East: 4 that waited 2 minutes
    # each. The plain waiting term (0.01 per vehicle-second) would leave the green where it is
    # (4 + 4.8 against 1.2 x 7.1); the square of the mean wait (60-s scale) serves the east.
    lanes = {"n": LaneState(7, 7, 14.0), "e": LaneState(4, 4, 480.0)}
    assert create_controller("cityhub@2.0", wait_scale_s=0).choose(_obs(lanes)) == 0
    assert create_controller("cityhub@2.0").choose(_obs(lanes)) == 1


def _near(lanes: dict[str, LaneState], near: dict[str, float] | None,
          elapsed: float = 8.0) -> JunctionObservation:
    return JunctionObservation("J", 0.0, (NS, EW), lanes, 0, elapsed, near=near)


def test_cityhub_holds_a_green_while_its_detectors_see_a_vehicle_near_the_stop_line() -> None:
    # Two vehicles on a 600-m lane: spread along it, the lane's counts put neither near the
    # stop line and the green gaps out; the stop-line detector sees one 20 m away: it stays.
    lanes = {"n": LaneState(0, 2, length_m=600), "e": LaneState(2, 2)}
    cityhub = create_controller("cityhub@2.1")
    assert cityhub.choose(_near(lanes, None)) == 1
    assert cityhub.choose(_near(lanes, {"n": 1, "e": 1})) == 0
    # ... and gaps out as soon as the detector is empty, wherever the lane's vehicles are.
    lanes = {"n": LaneState(0, 12, length_m=600), "e": LaneState(2, 2)}
    assert cityhub.choose(_near(lanes, None)) == 0
    assert cityhub.choose(_near(lanes, {"n": 0, "e": 1})) == 1


def test_cityhub_trusts_the_stop_line_detectors_only_at_light_load() -> None:
    # A queue fills the east detector (40 m): a loaded junction, where the lane's counts decide
    # as in v2.0 (a platoon still on its way to the north stop line keeps the green).
    lanes = {"n": LaneState(0, 12, length_m=600), "e": LaneState(5, 5)}
    cityhub = create_controller("cityhub@2.1")
    assert cityhub.choose(_near(lanes, {"n": 0, "e": 5})) == 0
    assert cityhub.choose(_near(lanes, {"n": 0, "e": 1})) == 1


def test_cityhub_asks_for_an_early_look_only_when_a_light_green_gapped_out() -> None:
    cityhub = create_controller("cityhub@2.1")
    lanes = ("n", "s", "e", "w")
    assert cityhub.gapped_out(NS, 8.0, {"n": 0, "s": 0, "e": 1}, lanes)
    assert not cityhub.gapped_out(NS, 8.0, {"n": 1, "s": 0, "e": 1}, lanes)  # still used
    assert not cityhub.gapped_out(NS, 3.0, {"e": 1}, lanes)  # in its minimum green
    assert not cityhub.gapped_out(NS, 8.0, {"e": 6}, lanes)  # loaded: the next decision
