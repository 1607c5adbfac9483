"""The operations page's key figures and the 2026 scorecard, from the layers a reader may see.

Computed from the in-memory snapshot (`cityhub.web.snapshot`) after it was cut to the reader's
view, so a figure never discloses a layer the reader may not read: a citizen gets no power
total when energy meters are not public. Indicator targets are the 2026 goals of the district
programme as far as the hub holds data for them; the evaluation package will own indicators
once it lands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cityhub.web.snapshot import CITY_SUFFIX, Row


@dataclass(frozen=True)
class Target:
    key: str
    target: float
    better: str  # "lower" or "higher"
    unit: str


TARGETS = (
    Target("congestionIndex", 4.0, "lower", ""),
    Target("goodAirShare", 85.0, "higher", "%"),
    Target("sensorAvailability", 98.0, "higher", "%"),
    Target("openHighAlerts", 0.0, "lower", ""),
)
# Column positions in a snapshot row (x, y, then the layer's columns in order).
ROAD_INDEX, SENSOR_STATE, STATION_AQI, METER_POWER, ALERT_SEVERITY, INDEX_VALUE = 3, 2, 3, 3, 2, 2


def _numbers(rows: Mapping[str, Row], at: int) -> list[float]:
    return [float(r[at]) for r in rows.values()
            if isinstance(r[at], int | float) and not isinstance(r[at], bool)]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def summarize(layers: Mapping[str, Mapping[str, Row]]) -> dict[str, Any]:
    """Counts, current congestion, air quality, energy, sensors, alerts and the scorecard of
    the given (visible) layers; a layer that is absent counts as unknown, not as zero."""
    indices = layers.get("indices", {})
    city_id = next((i for i in indices if i.endswith(CITY_SUFFIX)), next(iter(indices), None))
    index = _mean(_numbers({city_id: indices[city_id]}, INDEX_VALUE)) if city_id else None
    stations = _numbers(layers.get("stations", {}), STATION_AQI)
    power = _numbers(layers.get("meters", {}), METER_POWER)
    sensors = layers.get("sensors")
    online = sum(1 for r in sensors.values() if r[SENSOR_STATE] == "ok") if sensors else 0
    alerts = layers.get("alerts")
    severities: dict[str, int] = {}
    for row in (alerts or {}).values():
        level = str(row[ALERT_SEVERITY] or "informational")
        severities[level] = severities.get(level, 0) + 1
    values: dict[str, float | None] = {
        "congestionIndex": index,
        "goodAirShare": round(100 * sum(a <= 100 for a in stations) / len(stations), 1)
        if stations else None,
        "sensorAvailability": round(100 * online / len(sensors), 1) if sensors else None,
        # no alert is good news only where something is watched
        "openHighAlerts": float(severities.get("high", 0) + severities.get("critical", 0))
        if alerts is not None and any(layers.values()) else None,
    }
    return {
        "counts": {key: len(rows) for key, rows in layers.items()},
        "congestion": {"index": index, "id": city_id},
        "airQuality": {"stations": len(stations), "meanAqi": _mean(stations),
                       "maxAqi": max(stations) if stations else None},
        "energy": {"meters": len(power), "activePowerKw": round(sum(power), 1)}
        if "meters" in layers else None,
        "sensors": {"reporting": len(sensors), "online": online} if sensors is not None
        else None,
        "alerts": {"open": len(alerts), "bySeverity": severities} if alerts is not None
        else None,
        "scorecard": [scorecard_row(t, values[t.key]) for t in TARGETS],
    }


def scorecard_row(target: Target, value: float | None) -> dict[str, Any]:
    met = None if value is None else (
        value <= target.target if target.better == "lower" else value >= target.target)
    return {"key": target.key, "value": value, "target": target.target, "unit": target.unit,
            "better": target.better, "met": met}
