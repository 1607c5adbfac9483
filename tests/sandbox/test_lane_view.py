"""The twin's per-decision lane views: the same states as reading every lane up front, for the
lanes a controller asks for only."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cityhub.brain.observations import LaneState
from cityhub.sandbox.lane_view import ApproachView, LaneReads, LaneView
from cityhub.sandbox.scenarios import Scenario

LANES = ("a_0", "b_0", "c_0", "d_0")

# A lane as SUMO counts it: halted vehicles <= vehicles, and no waiting time without vehicles
# (all three are sums over the same vehicles).
values = st.integers(0, 30).flatmap(lambda n: st.tuples(
    st.integers(0, n), st.just(n), st.floats(0, 5000) if n else st.just(0.0)))
results = st.fixed_dictionaries(dict.fromkeys(LANES, values))


def reads(found: dict[str, tuple[int, int, float]], calls: list[tuple[str, int]]) -> LaneReads:
    """The three getters over `found`, recording (lane, variable) per call."""
    def getter(var: int) -> Callable[[str], Any]:
        def read(lane: str) -> Any:
            calls.append((lane, var))
            return found[lane][var]
        return read
    return (getter(0), getter(1), getter(2))


@given(results, st.lists(st.sampled_from((*LANES, "unwatched")), max_size=12))
def test_lane_view_shows_what_reading_every_lane_up_front_shows(
    found: dict[str, tuple[int, int, float]], asked: list[str]
) -> None:
    length = {lane: 10.0 * (i + 1) for i, lane in enumerate(LANES)}
    calls: list[tuple[str, int]] = []
    view = LaneView(reads(found, calls), length)
    eager = {lane: LaneState(*found[lane], length[lane]) for lane in LANES}
    for lane in asked:
        assert view.get(lane) == eager.get(lane)
    # each watched lane asked for is read once, its queue and waiting time only when it holds
    # vehicles; the others never
    wanted = {lane for lane in asked if lane in length}
    assert sorted(calls) == sorted([(lane, 1) for lane in wanted] + [
        (lane, var) for lane in wanted if found[lane][1] for var in (0, 2)])


@given(results)
def test_approach_view_sums_the_weighted_feeders_of_a_lane(
    found: dict[str, tuple[int, int, float]]
) -> None:
    length = dict.fromkeys(LANES, 50.0)
    lanes = LaneView(reads(found, []), length)
    approach = ApproachView({"a_0": (180.0, (("b_0", 1.0), ("c_0", 0.5)))}, lanes)
    a, b, c = found["a_0"], found["b_0"], found["c_0"]
    assert approach.get("a_0") == LaneState(a[0] + b[0] + 0.5 * c[0], a[1] + b[1] + 0.5 * c[1],
                                            a[2] + b[2] + 0.5 * c[2], 180.0)
    assert approach.get("d_0") is None  # no feeders: the controller reads the lane alone


READS_MATCH_SUBSCRIPTIONS = """
import sys
import libsumo
from cityhub.sandbox.simulator import Simulator

libsumo.start(["sumo", "-c", sys.argv[1], "--no-step-log", "--no-warnings", "--seed", "3"])
halting, count, waiting = Simulator(libsumo, "", "libsumo").lane_reads()
c = libsumo.constants
variables = (c.LAST_STEP_VEHICLE_HALTING_NUMBER, c.LAST_STEP_VEHICLE_NUMBER, c.VAR_WAITING_TIME)
lanes = [lane for lane in libsumo.lane.getIDList() if not lane.startswith(":")]
for lane in lanes:
    libsumo.lane.subscribe(lane, variables)
busy = 0
for _ in range(300):
    libsumo.simulationStep()
    for lane in lanes:
        subscribed = libsumo.lane.getSubscriptionResults(lane)
        got = (halting(lane), count(lane), waiting(lane))
        assert got == tuple(subscribed[v] for v in variables), (lane, got, subscribed)
        assert [type(x) for x in got] == [type(subscribed[v]) for v in variables]
        assert got[1] or got == (0, 0, 0.0), (lane, got)  # what LaneView skips reading
        busy += got[1] > 0
libsumo.close()
assert busy, "no vehicle seen"
"""


def test_lane_reads_give_what_subscriptions_gave(small_grid: Scenario) -> None:
    # The twin reads lanes when asked (libsumo's getters) instead of subscribing to them: the
    # values, and an empty lane's zero queue and waiting time, must be the subscription's.
    done = subprocess.run([sys.executable, "-c", READS_MATCH_SUBSCRIPTIONS,
                           str(small_grid.config)], capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr
