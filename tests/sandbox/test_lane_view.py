"""The twin's per-decision lane views: the same states as reading every lane up front, for the
lanes a controller asks for only."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from cityhub.brain.observations import LaneState
from cityhub.sandbox.lane_view import ApproachView, LaneView

VARS = (20, 16, 122)  # halting number, vehicle number, waiting time (any three ids will do)
LANES = ("a_0", "b_0", "c_0", "d_0")

values = st.tuples(st.integers(0, 30), st.integers(0, 30), st.floats(0, 5000))
results = st.fixed_dictionaries(dict.fromkeys(LANES, values))


def fetcher(found: dict[str, tuple[int, int, float]],
            calls: list[str]) -> Callable[[str], dict[int, float]]:
    def fetch(lane: str) -> dict[int, float]:
        calls.append(lane)
        return dict(zip(VARS, found[lane], strict=True))
    return fetch


@given(results, st.lists(st.sampled_from((*LANES, "unwatched")), max_size=12))
def test_lane_view_shows_what_reading_every_lane_up_front_shows(
    found: dict[str, tuple[int, int, float]], asked: list[str]
) -> None:
    length = {lane: 10.0 * (i + 1) for i, lane in enumerate(LANES)}
    calls: list[str] = []
    view = LaneView(fetcher(found, calls), length, VARS)
    eager = {lane: LaneState(*found[lane], length[lane]) for lane in LANES}
    for lane in asked:
        assert view.get(lane) == eager.get(lane)
    # each watched lane asked for is fetched once; the others never
    assert sorted(calls) == sorted({lane for lane in asked if lane in length})


@given(results)
def test_approach_view_sums_the_weighted_feeders_of_a_lane(
    found: dict[str, tuple[int, int, float]]
) -> None:
    length = dict.fromkeys(LANES, 50.0)
    lanes = LaneView(fetcher(found, []), length, VARS)
    approach = ApproachView({"a_0": (180.0, (("b_0", 1.0), ("c_0", 0.5)))}, lanes)
    a, b, c = found["a_0"], found["b_0"], found["c_0"]
    assert approach.get("a_0") == LaneState(a[0] + b[0] + 0.5 * c[0], a[1] + b[1] + 0.5 * c[1],
                                            a[2] + b[2] + 0.5 * c[2], 180.0)
    assert approach.get("d_0") is None  # no feeders: the controller reads the lane alone
