"""The operations page's district summary and the 2026 scorecard, read from the store.

Counts are count-only store queries by type (no entity is loaded for them); averages load the
few entities they need (the city index, air-quality stations, meters, open alerts). Per-state
sensor counts are left to the reader: a `q` count over 10,000 devices costs the hub far more
than the page spends counting the sensors it has loaded anyway, so the scorecard row
`sensorAvailability` comes with `"value": null, "measuredBy": "page"`. Indicator targets are
the 2026 goals of the district programme as far as the hub holds data for them; the evaluation
package will own indicators once it lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cityhub.api.query_params import build_query
from cityhub.ngsild.model import Entity
from cityhub.ngsild.terms import Terms
from cityhub.store.port import Store
from cityhub.web.aqi import pm25_iaqi

LOAD_LIMIT = 1000  # entities loaded for one average; the store caps a page anyway


@dataclass(frozen=True)
class Target:
    key: str
    target: float
    better: str  # "lower" or "higher"
    unit: str


MEASURED_BY_PAGE = frozenset({"sensorAvailability"})
TARGETS = (
    Target("congestionIndex", 4.0, "lower", ""),
    Target("goodAirShare", 85.0, "higher", "%"),
    Target("sensorAvailability", 98.0, "higher", "%"),
    Target("openHighAlerts", 0.0, "lower", ""),
)


def _value(entity: Entity, terms: Terms, name: str) -> Any:
    instances = entity["attrs"].get(terms.expand_term(name)) or []
    return instances[0].get("value") if instances else None


def _count(store: Store, tenant: str, terms: Terms, type_: str, q: str | None = None) -> int:
    query = build_query(terms, type_=type_, q=q, limit=0, count=True)
    return store.query(tenant, query).count or 0


def _load(store: Store, tenant: str, terms: Terms, type_: str,
          q: str | None = None) -> list[Entity]:
    query = build_query(terms, type_=type_, q=q, limit=LOAD_LIMIT, max_limit=LOAD_LIMIT)
    return store.query(tenant, query).entities


def _numbers(entities: list[Entity], terms: Terms, name: str) -> list[float]:
    found = (_value(e, terms, name) for e in entities)
    return [float(v) for v in found if isinstance(v, int | float) and not isinstance(v, bool)]


def station_indices(stations: list[Entity], terms: Terms) -> list[float]:
    """Each station's airQualityIndex, or the PM2.5 IAQI when it reports concentrations only."""
    out = []
    for station in stations:
        for name, convert in (("airQualityIndex", float), ("pm25", pm25_iaqi)):
            value = _value(station, terms, name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out.append(convert(float(value)))
                break
    return out


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def summarize(store: Store, tenant: str, terms: Terms) -> dict[str, Any]:
    """Counts, current congestion, air quality, energy, devices, alerts and the scorecard."""
    counts = {t: _count(store, tenant, terms, t) for t in (
        "RoadSegment", "TrafficSignal", "Device", "TrafficFlowObserved", "AirQualityObserved",
        "EnergyMeter", "Alert")}
    indices = _load(store, tenant, terms, "CongestionIndex")
    city = [e for e in indices if e["id"].endswith(":city")] or indices
    index = _mean(_numbers(city, terms, "congestionIndex"))
    stations = station_indices(_load(store, tenant, terms, "AirQualityObserved"), terms)
    power = _numbers(_load(store, tenant, terms, "EnergyMeter"), terms,
                     "activePower")
    open_alerts = _load(store, tenant, terms, "Alert", 'status=="open"')
    severities: dict[str, int] = {}
    for alert in open_alerts:
        level = str(_value(alert, terms, "severity") or "informational")
        severities[level] = severities.get(level, 0) + 1
    values: dict[str, float | None] = {
        "congestionIndex": index,
        "goodAirShare": round(100 * sum(a <= 100 for a in stations) / len(stations), 1)
        if stations else None,
        "sensorAvailability": None,
        "openHighAlerts": float(severities.get("high", 0) + severities.get("critical", 0))
        if counts["Alert"] else None,
    }
    return {
        "counts": counts,
        "congestion": {"index": index, "id": city[0]["id"] if city else None},
        "airQuality": {"stations": len(stations), "meanAqi": _mean(stations),
                       "maxAqi": max(stations) if stations else None},
        "energy": {"meters": len(power), "activePowerKw": round(sum(power), 1)},
        "alerts": {"open": len(open_alerts), "bySeverity": severities},
        "scorecard": [scorecard_row(t, values[t.key]) for t in TARGETS],
    }


def scorecard_row(target: Target, value: float | None) -> dict[str, Any]:
    met = None if value is None else (
        value <= target.target if target.better == "lower" else value >= target.target)
    row = {"key": target.key, "value": value, "target": target.target, "unit": target.unit,
           "better": target.better, "met": met}
    if target.key in MEASURED_BY_PAGE:
        row["measuredBy"] = "page"
    return row
