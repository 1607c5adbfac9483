"""Local rules and windows (pure: time is given)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.devices.messages import Measurement
from cityhub.edge.rules import RuleError, build_rule
from cityhub.edge.windows import Windows


def m(value: float, second: int = 0, device: str = "d") -> Measurement:
    return Measurement("", device, f"m{second}", f"2026-05-01T08:00:{second:02d}.000000Z",
                       {"pm25": value})


def test_threshold_fires_on_entering_and_again_after_recovery() -> None:
    rule = build_rule({"kind": "threshold", "attribute": "pm25", "above": 75})
    fired = [len(rule.check(m(v), "AirQualityObserved", 0.0)) for v in (10, 80, 90, 20, 99)]
    assert fired == [0, 1, 0, 0, 1]


def test_rate_of_change_stuck_and_silence() -> None:
    rate = build_rule({"kind": "rate_of_change", "attribute": "pm25", "max_per_s": 1})
    assert rate.check(m(10, 0), "", 0) == []
    assert rate.check(m(10.5, 1), "", 1) == []
    assert len(rate.check(m(20, 2), "", 2)) == 1
    stuck = build_rule({"kind": "stuck", "attribute": "pm25", "count": 3})
    assert [len(stuck.check(m(5, s), "", s)) for s in range(4)] == [0, 0, 1, 0]
    silence = build_rule({"kind": "silence", "seconds": 10})
    silence.check(m(1), "", 100.0)
    assert silence.tick(105.0) == []
    assert len(silence.tick(111.0)) == 1
    assert silence.tick(120.0) == []  # once per silence


@pytest.mark.parametrize("config", [{"kind": "nope"}, {"kind": "threshold", "attribute": "x"},
                                    {"kind": "stuck", "attribute": "x", "count": 1},
                                    {"kind": "threshold", "attribute": "x", "above": 1,
                                     "severity": "huge"}])
def test_bad_rules_are_refused(config: dict[str, object]) -> None:
    with pytest.raises(RuleError):
        build_rule(config)


@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 299.99)), min_size=1, max_size=50))
def test_windows_count_mean_min_max(samples: list[tuple[float, float]]) -> None:
    windows = Windows(100)
    for value, at in samples:
        windows.add(m(value), at)
    closed = windows.close_due(1000)
    assert len(windows) == 0
    assert sum(w.stats["pm25"].count for w in closed) == len(samples)
    for window in closed:
        inside = [v for v, at in samples if window.start <= at < window.end]
        stats = window.summary()["attributes"]["pm25"]
        assert stats["count"] == len(inside)
        assert stats["min"] == min(inside)
        assert stats["max"] == max(inside)
        assert stats["mean"] == pytest.approx(sum(inside) / len(inside))
