"""A generated fixture district in the shared data model (docs/data-model.md).

`build(...)` lays out a grid of junctions (TrafficSignal), the roads between them (RoadSegment
LineStrings), traffic sensors (Device), air-quality stations, energy meters, a few alerts and
the city-wide CongestionIndex; `entities(...)` gives them as normalized NGSI-LD entities.
`cityhub demo` runs the real SUMO twin and device simulator; this fixture is what the page's
API tests (tests/web) and bench/page.py write into a hub when they need a district of a known
size without SUMO.

Everything here is plain data; writing it into a hub is `HubWriter`'s job (web/hub_client.py).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISTRICT = "demo"
CITY_INDEX_ID = f"urn:ngsi-ld:CongestionIndex:{DISTRICT}:city"
CENTRE = (121.4737, 31.2304)  # lon, lat
SPACING = 0.004  # degrees between junctions (about 400 m)
LEVELS = ("smooth", "basicallySmooth", "light", "moderate", "severe")
AQI_LEVELS = ((50, "good"), (100, "moderate"), (150, "unhealthyForSensitive"),
              (200, "unhealthy"), (300, "veryUnhealthy"))
STREETS = ("Zhongshan Rd", "Huaihai Rd", "Nanjing Rd", "Yan'an Rd", "Fuxing Rd", "Jinling Rd",
           "Renmin Rd", "Xizang Rd", "Henan Rd", "Sichuan Rd", "Jiangxi Rd", "Shaanxi Rd")

Entity = dict[str, Any]


def utc_stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def congestion_level(index: float) -> str:
    """The traffic performance index band (0-2 smooth ... 8-10 severe)."""
    return LEVELS[min(int(max(index, 0.0) // 2), len(LEVELS) - 1)]


def aqi_level(aqi: float) -> str:
    for bound, level in AQI_LEVELS:
        if aqi <= bound:
            return level
    return "hazardous"


def prop(value: Any, unit: str | None = None, observed: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value}
    if unit:
        out["unitCode"] = unit
    if observed:
        out["observedAt"] = observed
    return out


def geo(kind: str, coordinates: Any) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": kind, "coordinates": coordinates}}


def rel(target: str | list[str]) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def _urn(kind: str, local: str, owner: str = DISTRICT) -> str:
    return f"urn:ngsi-ld:{kind}:{owner}:{local}"


def _junction_point(col: int, row: int, size: int) -> tuple[float, float]:
    half = (size - 1) / 2
    return (round(CENTRE[0] + (col - half) * SPACING * 1.15, 6),
            round(CENTRE[1] + (row - half) * SPACING, 6))


@dataclass
class Road:
    """One road between two junctions, with its current traffic state."""

    id: str
    name: str
    line: list[tuple[float, float]]
    ends: tuple[str, str]
    free_flow: float
    index: float


@dataclass
class DistrictState:
    """The fixture district: what `entities()` renders."""

    size: int
    roads: list[Road] = field(default_factory=list)
    signals: dict[str, tuple[float, float]] = field(default_factory=dict)
    phases: dict[str, int] = field(default_factory=dict)
    sensors: dict[str, tuple[tuple[float, float], str, str]] = field(default_factory=dict)
    stations: dict[str, tuple[tuple[float, float], float]] = field(default_factory=dict)
    meters: dict[str, tuple[tuple[float, float], float, float]] = field(default_factory=dict)


PHASE_STATES = ("GGrrGGrr", "yyrryyrr", "rrGGrrGG", "rryyrryy")


def build(size: int = 4, sensors: int = 40, seed: int = 7) -> DistrictState:
    """A `size` x `size` grid district with `sensors` traffic sensors along its roads."""
    rng = random.Random(seed)  # noqa: S311 (made-up data, reproducible on purpose)
    state = DistrictState(size=size)
    for col in range(size):
        for row in range(size):
            sid = _urn("TrafficSignal", f"J{col}-{row}")
            state.signals[sid] = _junction_point(col, row, size)
            state.phases[sid] = rng.randrange(len(PHASE_STATES))
    n = 0
    for col in range(size):
        for row in range(size):
            for dc, dr in ((1, 0), (0, 1)):
                if col + dc >= size or row + dr >= size:
                    continue
                a, b = _junction_point(col, row, size), _junction_point(col + dc, row + dr, size)
                bend = ((a[0] + b[0]) / 2 + rng.uniform(-1, 1) * SPACING * 0.06,
                        (a[1] + b[1]) / 2 + rng.uniform(-1, 1) * SPACING * 0.06)
                street = STREETS[(row if dc else col + 6) % len(STREETS)]
                n += 1
                state.roads.append(Road(
                    id=_urn("RoadSegment", f"E{n}"),
                    name=f"{street} {n}",
                    line=[a, (round(bend[0], 6), round(bend[1], 6)), b],
                    ends=(_urn("TrafficSignal", f"J{col}-{row}"),
                          _urn("TrafficSignal", f"J{col + dc}-{row + dr}")),
                    free_flow=60.0 if dc else 50.0,
                    index=round(rng.uniform(0.5, 7.5), 2),
                ))
    for i in range(sensors):
        road = state.roads[i % len(state.roads)]
        t = rng.uniform(0.1, 0.9)
        (x0, y0), (x1, y1) = road.line[0], road.line[-1]
        point = (round(x0 + (x1 - x0) * t + rng.uniform(-1, 1) * 1e-4, 6),
                 round(y0 + (y1 - y0) * t + rng.uniform(-1, 1) * 1e-4, 6))
        health = rng.random()
        status = "ok" if health < 0.9 else ("silent" if health < 0.96 else "faulty")
        state.sensors[_urn("Device", f"loop-{i:05d}", "transport")] = (point, status, road.id)
    west, south = _junction_point(0, 0, size)
    east, north = _junction_point(size - 1, size - 1, size)
    for i in range(6):
        spot = (round(rng.uniform(west, east), 6), round(rng.uniform(south, north), 6))
        state.stations[_urn("AirQualityObserved", f"aq-{i:03d}", "ecology")] = (
            spot, round(rng.uniform(20, 140), 1))
    for i in range(8):
        spot = (round(rng.uniform(west, east), 6), round(rng.uniform(south, north), 6))
        state.meters[_urn("EnergyMeter", f"em-{i:03d}", "energy")] = (
            spot, round(rng.uniform(80, 900), 1), round(rng.uniform(1e5, 9e5), 1))
    return state


def road_entity(road: Road, now: str) -> Entity:
    speed = round(road.free_flow * max(0.08, 1 - road.index / 11), 1)
    length = sum(math.dist(p, q) for p, q in zip(road.line, road.line[1:], strict=False)) * 1.0e5
    return {
        "id": road.id, "type": "RoadSegment",
        "name": prop(road.name),
        "location": geo("LineString", [list(p) for p in road.line]),
        "totalLaneNumber": prop(2),
        "maximumAllowedSpeed": prop(road.free_flow, "KMH"),
        "freeFlowSpeed": prop(road.free_flow, "KMH"),
        "length": prop(round(length), "MTR"),
        "averageSpeed": prop(speed, "KMH", now),
        "congestionIndex": prop(road.index, None, now),
        "congestionLevel": prop(congestion_level(road.index), None, now),
        "vehicleCount": prop(int(road.index * 9 + 4), None, now),
    }


def signal_entity(sid: str, state: DistrictState, now: str) -> Entity:
    phase = state.phases[sid]
    out: Entity = {"id": sid, "type": "TrafficSignal",
                   "currentPhase": prop(phase, None, now),
                   "phaseState": prop(PHASE_STATES[phase], None, now)}
    out["location"] = geo("Point", list(state.signals[sid]))
    out["name"] = prop("Junction " + sid.rsplit(":", 1)[-1])
    out["controller"] = prop("cityhub-demo-fixed-time 1")
    out["refRoadSegment"] = rel([r.id for r in state.roads if sid in r.ends])
    return out


def city_index(state: DistrictState) -> float:
    return round(sum(r.index for r in state.roads) / max(len(state.roads), 1), 2)


def city_index_entity(state: DistrictState, now: str) -> Entity:
    value = city_index(state)
    out: Entity = {"id": CITY_INDEX_ID, "type": "CongestionIndex",
                   "congestionIndex": prop(value, None, now),
                   "congestionLevel": prop(congestion_level(value), None, now)}
    west, south = _junction_point(0, 0, state.size)
    east, north = _junction_point(state.size - 1, state.size - 1, state.size)
    out["areaName"] = prop("Demo district")
    out["location"] = geo("Polygon", [[[west, south], [east, south], [east, north],
                                       [west, north], [west, south]]])
    return out


def station_entity(sid: str, state: DistrictState, now: str) -> Entity:
    spot, aqi = state.stations[sid]
    out: Entity = {"id": sid, "type": "AirQualityObserved",
                   "pm25": prop(round(aqi * 0.55, 1), "GQ", now),
                   "pm10": prop(round(aqi * 0.9, 1), "GQ", now),
                   "no2": prop(round(aqi * 0.35, 1), "GQ", now),
                   "airQualityIndex": prop(aqi, None, now),
                   "airQualityLevel": prop(aqi_level(aqi), None, now)}
    out["location"] = geo("Point", list(spot))
    return out


def meter_entity(mid: str, state: DistrictState, now: str) -> Entity:
    spot, power, total = state.meters[mid]
    out: Entity = {"id": mid, "type": "EnergyMeter",
                   "activePower": prop(power, "KWT", now),
                   "totalActiveEnergyImport": prop(total, "KWH", now)}
    out["location"] = geo("Point", list(spot))
    out["name"] = prop("Building " + mid.rsplit("-", 1)[-1])
    return out


def sensor_entity(did: str, state: DistrictState, now: str) -> Entity:
    spot, status, road = state.sensors[did]
    out: Entity = {"id": did, "type": "Device",
                   "deviceState": prop(status, None, now),
                   "dateLastValueReported": prop(now)}
    out["location"] = geo("Point", list(spot))
    out["controlledProperty"] = prop(["trafficFlow", "occupancy"])
    out["owner"] = prop("transport")
    out["refRoadSegment"] = rel(road)
    return out


def alerts(state: DistrictState, now: str) -> list[Entity]:
    """Two open alerts (a congested road, a faulty sensor) and a closed one."""
    worst = max(state.roads, key=lambda r: r.index)
    faulty = next((d for d, v in state.sensors.items() if v[1] != "ok"), None)
    found: list[tuple[str, str, str, str, Any, str, str]] = [
        ("congestion-1", "traffic", "trafficJam", "high", worst.line[1], worst.id, "open"),
        ("aq-1", "environment", "airPollution", "medium",
         next(iter(state.stations.values()))[0], next(iter(state.stations)), "closed"),
    ]
    if faulty:
        found.append(("device-1", "device", "deviceSilent", "low", state.sensors[faulty][0],
                      faulty, "open"))
    return [{
        "id": _urn("Alert", local), "type": "Alert",
        "category": prop(category), "subCategory": prop(sub), "severity": prop(severity),
        "description": prop(f"{sub} at {source.rsplit(':', 1)[-1]}"),
        "dateIssued": prop(now), "status": prop(status),
        "alertSource": rel(source), "location": geo("Point", list(spot)),
    } for local, category, sub, severity, spot, source, status in found]


def entities(state: DistrictState, now: str | None = None) -> list[Entity]:
    """Every entity of the district, normalized, ready for a batch upsert."""
    now = now or utc_stamp()
    out = [road_entity(r, now) for r in state.roads]
    out += [signal_entity(s, state, now) for s in state.signals]
    out += [sensor_entity(d, state, now) for d in state.sensors]
    out += [station_entity(s, state, now) for s in state.stations]
    out += [meter_entity(m, state, now) for m in state.meters]
    out += alerts(state, now)
    out.append(city_index_entity(state, now))
    return out
