"""The congestion index: a 0-10 traffic performance index (TPI) per road, per area, for the city.

Bands are those of Beijing's DB11/T 785 (城市道路交通运行评价指标体系): 0-2 smooth, 2-4 basically
smooth, 4-6 light, 6-8 moderate, 8-10 severe congestion. DB11/T 785 grades a road by its travel
speed against fixed km/h thresholds per road class (arterial: >40, 30-40, 20-30, 15-20, <15 km/h).
Districts differ in speed limits, so cityhub grades by the ratio r = speed / free-flow speed, using
the arterial thresholds divided by a typical 55 km/h arterial free-flow speed (rounded):

    r >= 0.70 -> 0-2, 0.55-0.70 -> 2-4, 0.35-0.55 -> 4-6, 0.25-0.35 -> 6-8, r < 0.25 -> 8-10

with linear interpolation inside a band (r = 1 gives 0, r = 0 gives 10). An area's (and the city's)
index is the mean of its roads' indices weighted by vehicle-kilometres travelled (VKT), as
DB11/T 785 weights roads by VKT. See docs/brain.md for the derivation and its limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# (ratio at the band's upper edge, ratio at its lower edge, index at upper edge)
_BANDS: tuple[tuple[float, float, float], ...] = (
    (1.00, 0.70, 0.0),
    (0.70, 0.55, 2.0),
    (0.55, 0.35, 4.0),
    (0.35, 0.25, 6.0),
    (0.25, 0.00, 8.0),
)
LEVELS = ("smooth", "basicallySmooth", "light", "moderate", "severe")


def road_index(speed_kmh: float, free_flow_kmh: float) -> float:
    """TPI of one road from its mean speed and free-flow speed (0 = free flow, 10 = standstill)."""
    if free_flow_kmh <= 0:
        raise ValueError("free-flow speed must be positive")
    ratio = min(1.0, max(0.0, speed_kmh / free_flow_kmh))
    for high, low, base in _BANDS:
        if ratio >= low:
            return round(base + 2.0 * (high - ratio) / (high - low), 3)
    return 10.0  # pragma: no cover - ratio >= 0 always matches the last band


def level(index: float) -> str:
    """The DB11/T 785 band of an index: smooth, basicallySmooth, light, moderate, severe."""
    if not 0 <= index <= 10:
        raise ValueError("a traffic performance index lies in 0-10")
    return LEVELS[min(4, int(index // 2))]


@dataclass(frozen=True)
class RoadReading:
    """One road over one interval: mean speed, free-flow speed, vehicle-km travelled, its area."""

    road_id: str
    speed_kmh: float
    free_flow_kmh: float
    vehicle_km: float
    area: str = "city"

    @property
    def index(self) -> float:
        return road_index(self.speed_kmh, self.free_flow_kmh)


def area_index(readings: Iterable[RoadReading]) -> float | None:
    """VKT-weighted mean road index; None when no vehicle travelled (nothing to grade)."""
    total_vkt = 0.0
    weighted = 0.0
    for reading in readings:
        if reading.vehicle_km > 0:
            total_vkt += reading.vehicle_km
            weighted += reading.vehicle_km * reading.index
    return round(weighted / total_vkt, 3) if total_vkt > 0 else None


def indices_by_area(readings: Sequence[RoadReading]) -> dict[str, float]:
    """Index per area plus the city (`city`) over every road."""
    out: dict[str, float] = {}
    for area in sorted({r.area for r in readings}):
        value = area_index(r for r in readings if r.area == area)
        if value is not None:
            out[area] = value
    city = area_index(readings)
    if city is not None:
        out["city"] = city
    return out


@dataclass
class IndexHistory:
    """Time series of area indices (seconds of day -> index), kept to report peak-hour change."""

    points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, time_s: float, indices: dict[str, float]) -> None:
        for area, value in indices.items():
            self.points.setdefault(area, []).append((time_s, value))

    def mean(self, area: str = "city", start_s: float = 0.0, end_s: float = 1e12) -> float | None:
        values = [v for t, v in self.points.get(area, []) if start_s <= t < end_s]
        return sum(values) / len(values) if values else None

    def peak(self, area: str = "city", window_s: float = 3600.0) -> tuple[float, float] | None:
        """(start, mean index) of the window with the highest mean index: the peak hour."""
        series = self.points.get(area, [])
        best: tuple[float, float] | None = None
        for start, _ in series:
            value = self.mean(area, start, start + window_s)
            if value is not None and (best is None or value > best[1]):
                best = (start, value)
        return best


def peak_change(before: IndexHistory, after: IndexHistory, area: str = "city",
                window_s: float = 3600.0) -> float | None:
    """Relative change of the peak-hour index, e.g. -0.28 for the seed's 28 % drop."""
    old, new = before.peak(area, window_s), after.peak(area, window_s)
    if old is None or new is None or old[1] == 0:
        return None
    return round((new[1] - old[1]) / old[1], 4)
