"""Grouping, clamping and the noise of private aggregates (statistical bounds that cannot flake:
each is more than ten standard errors wide)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityhub.governance.privacy import AggregateQuery, Grid, PrivacyQueryError, exact, release

T0 = datetime(2026, 11, 23, tzinfo=UTC)


def query(statistic: str = "count", epsilon: float = 1.0, cell: float = 0.1,
          hours: int = 2) -> AggregateQuery:
    return AggregateQuery(statistic, "pm25", epsilon,  # type: ignore[arg-type]
                          Grid(2.0, 41.0, 2.2, 41.1, cell), T0, T0 + timedelta(hours=hours),
                          timedelta(hours=1))


def test_readings_fall_into_cells_and_buckets_and_are_clamped() -> None:
    q = query()
    at = T0.timestamp()
    readings = [
        (2.05, 41.05, at, 10), (2.05, 41.05, at + 3700, 20),  # west cell, hours 0 and 1
        (2.15, 41.05, at + 10, 900),  # east cell, clamped to 500
        (2.15, 41.05, at + 20, "high"), (2.15, 41.05, at + 30, True),  # not numbers
        (3.0, 41.05, at, 10), (2.05, 41.05, at + 7200, 10),  # outside space or time
    ]
    counts, sums = exact(q, readings, 0.0, 500.0)
    assert q.groups == 4
    assert counts == [1.0, 1.0, 1.0, 0.0]  # (west, h0), (east, h0), (west, h1), (east, h1)
    assert sums == [10.0, 500.0, 20.0, 0.0]
    assert q.describe(2) == {"cell": [0, 0], "bbox": pytest.approx([2.0, 41.0, 2.1, 41.1]),
                             "start": "2026-11-23T01:00:00Z", "end": "2026-11-23T02:00:00Z"}


def test_noise_has_the_laplace_scale_sensitivity_over_epsilon() -> None:
    q = query(cell=0.002, hours=2)  # 100 x 50 cells x 2 buckets = 10,000 groups
    assert q.groups == 10_000
    counts = [100.0] * q.groups
    noisy = release(q, counts, [0.0] * q.groups, 0.0, 500.0)
    mean_abs = sum(abs(v - 100.0) for v in noisy if v is not None) / q.groups
    assert 0.9 < mean_abs < 1.1  # E|X| = b = 1 / epsilon; standard error 0.01
    sums = release(query("sum", epsilon=0.5, cell=0.002), [0.0] * q.groups,
                   [1000.0] * q.groups, 0.0, 500.0)
    mean_abs = sum(abs(v - 1000.0) for v in sums if v is not None) / q.groups
    assert 900 < mean_abs < 1100  # b = 500 / 0.5


def test_counts_are_never_negative_and_means_stay_in_range() -> None:
    q = query("mean", epsilon=0.1)
    means = release(q, [1.0, 0.0, 500.0, 3.0], [500.0, 0.0, 500.0 * 10, 1500.0], 0.0, 500.0)
    assert all(m is None or 0.0 <= m <= 500.0 for m in means)
    counts = release(query("count", epsilon=0.1), [0.0] * 4, [0.0] * 4, 0.0, 500.0)
    assert all(c is not None and c >= 0.0 for c in counts)


def test_too_many_groups_or_empty_ranges_are_refused() -> None:
    with pytest.raises(PrivacyQueryError, match="groups"):
        query(cell=0.0001).check()
    with pytest.raises(PrivacyQueryError, match="empty"):
        query(hours=0).check()
