"""`cityhub@2.2`: v2.1 with a shared lane served in full by the phase protecting one of its
movements."""

from __future__ import annotations

from cityhub.brain.controllers import controller_names, create_controller
from cityhub.brain.observations import JunctionObservation, LaneState, PhaseInfo
from cityhub.brain.tuned import CityhubShared, shared_lanes_protected

# North and south each reach the junction on one lane shared by a through movement and a left
# turn: the two-way through phase protects the through movements and lets the left turns go
# permissively, the one-approach phase protects both of the north's.
SHARED = [[("n", "s_out")], [("n", "e_out")], [("s", "n_out")], [("s", "w_out")]]
TWO_WAY = PhaseInfo.from_links("GgGg", SHARED)
NORTH = PhaseInfo.from_links("GGrr", SHARED)

# A through lane, and a dedicated left-turn lane that the through phase lets go permissively.
DEDICATED = [[("thru", "x")], [("left", "y")]]
THROUGH = PhaseInfo.from_links("Gg", DEDICATED)
LEFT = PhaseInfo.from_links("rG", DEDICATED)


def _choose(name: str, phases: tuple[PhaseInfo, ...], lanes: dict[str, LaneState]) -> int:
    return create_controller(name).choose(JunctionObservation("J", 0.0, phases, lanes, 0, 15.0))


def test_v22_is_the_default_with_v21s_configuration() -> None:
    v22 = create_controller("cityhub@2.2")
    assert isinstance(v22, CityhubShared)
    assert "cityhub@2.2" in controller_names()
    assert v22.identity.startswith("cityhub@2.2#")
    assert v22.config == create_controller("cityhub@2.1").config  # a rule change, no tuning
    assert create_controller("cityhub").identity == v22.identity  # the default since the
    assert create_controller("cityhub@2.0").identity.startswith("cityhub@2.0#")  # per-link red


def test_a_permissive_movement_counts_as_protected_only_on_a_lane_the_phase_protects() -> None:
    assert set(shared_lanes_protected(TWO_WAY).protected) == set(TWO_WAY.movements)
    assert shared_lanes_protected(TWO_WAY).movements == TWO_WAY.movements
    assert shared_lanes_protected(THROUGH).protected == (("thru", "x"),)  # dedicated: as it was
    assert shared_lanes_protected(NORTH) is NORTH


def test_v22_keeps_the_two_way_through_phase_for_a_shared_lane_queue() -> None:
    # A queue of 20 on the north's shared lane, 2 on the south's. v2.1 has the two-way phase
    # serve each shared lane only 0.75 (the left turn counting half), so the one-approach phase
    # gains a quarter of the north's queue and gives up only the south's three quarters: it
    # switches to a phase that moves one approach instead of two. v2.2 has the two-way phase
    # serve both lanes in full: the one-approach phase gains nothing.
    lanes = {"n": LaneState(20, 20), "s": LaneState(2, 2)}
    assert _choose("cityhub@2.1", (TWO_WAY, NORTH), lanes) == 1
    assert _choose("cityhub@2.2", (TWO_WAY, NORTH), lanes) == 0


def test_v22_still_serves_a_dedicated_left_lane_with_its_protected_phase() -> None:
    lanes = {"thru": LaneState(2, 2), "left": LaneState(6, 6)}
    assert _choose("cityhub@2.2", (THROUGH, LEFT), lanes) == 1
