"""Tumbling windows per device and attribute (count, mean, min, max of numeric values),
aligned to multiples of the window length in epoch seconds. A window closes when time passes
its end; each remembers the outbox rows it summarises, so that its aggregate can replace them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cityhub.devices.messages import Measurement


@dataclass
class Stats:
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def to_json(self) -> dict[str, float]:
        return {"count": self.count, "mean": self.total / self.count, "min": self.low,
                "max": self.high}


@dataclass
class Window:
    tenant: str
    device_id: str
    start: float
    end: float
    stats: dict[str, Stats] = field(default_factory=dict)
    seqs: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "device": self.device_id,
                "start": _iso(self.start), "end": _iso(self.end),
                "attributes": {name: s.to_json() for name, s in self.stats.items()}}

    def measurement(self) -> Measurement:
        """The window as one measurement: each attribute's mean, observed at the window end."""
        return Measurement(self.tenant, self.device_id, f"window:{int(self.start)}",
                           _iso(self.end), {n: s.total / s.count for n, s in self.stats.items()})


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Windows:
    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("window length must be positive")
        self.seconds = seconds
        self._open: dict[tuple[str, str, float], Window] = {}

    def add(self, measurement: Measurement, at: float, seq: int | None = None) -> None:
        start = at - at % self.seconds
        key = (measurement.tenant, measurement.device_id, start)
        window = self._open.get(key)
        if window is None:
            window = self._open[key] = Window(measurement.tenant, measurement.device_id, start,
                                              start + self.seconds)
        for name, value in measurement.values.items():
            if isinstance(value, float):
                window.stats.setdefault(name, Stats()).add(value)
        if seq is not None:
            window.seqs.append(seq)

    def close_due(self, now: float) -> list[Window]:
        """Remove and return every window whose end has passed."""
        due = [k for k, w in self._open.items() if w.end <= now]
        return [self._open.pop(k) for k in due]

    def __len__(self) -> int:
        return len(self._open)
