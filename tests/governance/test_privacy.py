"""Grouping, contribution bounding, sensitivity and the noise of private aggregates
(statistical bounds that cannot flake: each is more than ten standard errors wide)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.governance.privacy import (
    AggregateQuery,
    Areas,
    Grid,
    PrivacyQueryError,
    Space,
    exact,
    parse_areas,
    release,
)

T0 = datetime(2026, 11, 23, tzinfo=UTC)
AT = T0.timestamp()
GRID = Grid(2.0, 41.0, 2.2, 41.1, 0.1)
DISTRICTS = parse_areas([
    {"id": "west", "name": "West", "polygon": [[2.0, 41.0], [2.1, 41.0], [2.1, 41.1],
                                               [2.0, 41.1], [2.0, 41.0]]},
    {"id": "east", "polygon": [[2.1, 41.0], [2.2, 41.0], [2.2, 41.1], [2.1, 41.1]]},
    {"id": "all", "polygon": [[2.0, 41.0], [2.2, 41.0], [2.2, 41.1], [2.0, 41.1]]},
])


def query(statistic: str = "count", epsilon: float = 1.0, space: Space = GRID, hours: int = 2,
          contributions: int = 10) -> AggregateQuery:
    return AggregateQuery(statistic, "pm25", epsilon, space,  # type: ignore[arg-type]
                          T0, T0 + timedelta(hours=hours), timedelta(hours=1), contributions)


def test_readings_fall_into_cells_and_buckets_and_are_clamped() -> None:
    q = query()
    readings = [
        ("a", 2.05, 41.05, AT, 10), ("a", 2.05, 41.05, AT + 3700, 20),  # west, hours 0 and 1
        ("b", 2.15, 41.05, AT + 10, 900),  # east cell, clamped to 500
        ("b", 2.15, 41.05, AT + 20, "high"), ("b", 2.15, 41.05, AT + 30, True),  # not numbers
        ("c", 3.0, 41.05, AT, 10), ("a", 2.05, 41.05, AT + 7200, 10),  # outside space or time
    ]
    counts, sums = exact(q, readings, 0.0, 500.0)
    assert q.groups == 4
    assert counts == [1.0, 1.0, 1.0, 0.0]  # (west, h0), (east, h0), (west, h1), (east, h1)
    assert sums == [10.0, 500.0, 20.0, 0.0]
    assert q.describe(2) == {"cell": [0, 0], "bbox": pytest.approx([2.0, 41.0, 2.1, 41.1]),
                             "start": "2026-11-23T01:00:00Z", "end": "2026-11-23T02:00:00Z"}


def test_each_device_contributes_at_most_k_readings_per_bucket() -> None:
    q = query(contributions=3, hours=1)
    chatty = [("chatty", 2.05, 41.05, AT + n, 100) for n in range(50)]
    quiet = [("quiet", 2.06, 41.06, AT + n, 10) for n in range(2)]
    counts, sums = exact(q, chatty + quiet, 0.0, 500.0)
    assert counts[0] == 3 + 2
    assert sums[0] == 3 * 100 + 2 * 10
    assert (q.count_sensitivity, q.sum_sensitivity(-50.0, 500.0)) == (3.0, 1500.0)
    # a device stays where it was first seen: it never counts in two places
    moved = [("m", 2.05, 41.05, AT, 1), ("m", 2.15, 41.05, AT + 1, 1)]
    assert exact(q, moved, 0.0, 500.0)[0] == [2.0, 0.0]


def test_named_areas_group_by_the_first_area_that_covers_a_device() -> None:
    q = query(space=Areas(DISTRICTS), hours=1)
    readings = [("w", 2.05, 41.05, AT, 1), ("e", 2.15, 41.05, AT, 1), ("x", 3.0, 41.0, AT, 1)]
    counts, _ = exact(q, readings, 0.0, 10.0)
    assert counts == [1.0, 1.0, 0.0]  # "all" covers both, but each device counts once
    assert q.describe(1) == {"area": "east", "name": "east", "start": "2026-11-23T00:00:00Z",
                             "end": "2026-11-23T01:00:00Z"}
    assert DISTRICTS[0].name == "West"


@pytest.mark.parametrize(("entries", "message"), [
    ([{"id": "a", "polygon": [[0, 0], [1, 1], [0, 0]]}], "not a valid area"),
    ([{"id": "a", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1], [1, 0]]}], "not a valid area"),
    ([{"id": "a"}], "polygon"),
    ([{"id": "a", "polygon": [[0, 0], [1, 0], [1, 1]]}] * 2, "declared twice"),
])
def test_bad_area_declarations_are_refused(entries: list[dict[str, object]],
                                          message: str) -> None:
    with pytest.raises(PrivacyQueryError, match=message):
        parse_areas(entries)


readings_strategy = st.lists(st.tuples(
    st.sampled_from(["d1", "d2", "d3", "d4"]),
    st.floats(2.0, 2.2, exclude_max=True), st.floats(41.0, 41.1, exclude_max=True),
    st.floats(AT, AT + 3 * 3600, exclude_max=True),
    st.floats(-1000, 1000)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(readings=readings_strategy, k=st.integers(1, 5), removed=st.sampled_from(["d1", "d2"]))
def test_removing_one_device_moves_the_answer_by_at_most_the_sensitivity(
        readings: list[tuple[str, float, float, float, float]], k: int, removed: str) -> None:
    """The privacy unit: neighbouring data sets differ in one device's readings."""
    q = query(hours=3, contributions=k)
    counts, sums = exact(q, readings, -50.0, 100.0)
    counts2, sums2 = exact(q, [r for r in readings if r[0] != removed], -50.0, 100.0)
    assert sum(abs(a - b) for a, b in zip(counts, counts2, strict=True)) <= q.count_sensitivity
    assert sum(abs(a - b) for a, b in zip(sums, sums2, strict=True)) <= \
        q.sum_sensitivity(-50.0, 100.0) + 1e-6


def test_noise_has_the_laplace_scale_sensitivity_over_epsilon() -> None:
    fine = Grid(2.0, 41.0, 2.2, 41.1, 0.002)  # 100 x 50 cells x 2 buckets = 10,000 groups
    q = query(space=fine, contributions=1)  # sensitivity 1 reading x 2 buckets = 2
    assert q.groups == 10_000
    noisy = release(q, [100.0] * q.groups, [0.0] * q.groups, 0.0, 500.0)
    mean_abs = sum(abs(v - 100.0) for v in noisy if v is not None) / q.groups
    assert 1.8 < mean_abs < 2.2  # E|X| = b = 2 / epsilon; standard error 0.02
    q = query("sum", epsilon=0.5, space=fine, contributions=1)
    sums = release(q, [0.0] * q.groups, [1000.0] * q.groups, 0.0, 500.0)
    mean_abs = sum(abs(v - 1000.0) for v in sums if v is not None) / q.groups
    assert 1800 < mean_abs < 2200  # b = 2 x 500 / 0.5


def test_counts_are_never_negative_and_means_stay_in_range() -> None:
    q = query("mean", epsilon=0.1)
    means = release(q, [1.0, 0.0, 500.0, 3.0], [500.0, 0.0, 500.0 * 10, 1500.0], 0.0, 500.0)
    assert all(m is None or 0.0 <= m <= 500.0 for m in means)
    counts = release(query("count", epsilon=0.1), [0.0] * 4, [0.0] * 4, 0.0, 500.0)
    assert all(c is not None and c >= 0.0 for c in counts)


def test_too_many_groups_or_empty_ranges_are_refused() -> None:
    with pytest.raises(PrivacyQueryError, match="groups"):
        query(space=Grid(2.0, 41.0, 2.2, 41.1, 0.0001)).check()
    with pytest.raises(PrivacyQueryError, match="empty"):
        query(hours=0).check()
    with pytest.raises(PrivacyQueryError, match="no area"):
        query(space=Areas([])).check()
    with pytest.raises(PrivacyQueryError, match="bbox"):
        Grid(2.2, 41.0, 2.0, 41.1, 0.1)
