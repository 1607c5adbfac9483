"""NGSI-LD entities the twin publishes (docs/data-model.md): RoadSegment, TrafficFlowObserved,
TrafficSignal, CongestionIndex, in normalized form with the core context only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cityhub.brain.congestion import level

Entity = dict[str, Any]
Point = tuple[float, float]


def urn(kind: str, district: str, local: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_.~" else "_" for c in local)
    return f"urn:ngsi-ld:{kind}:{district}:{safe}"


def _prop(value: object, at: str | None = None, unit: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value}
    if at is not None:
        out["observedAt"] = at
    if unit is not None:
        out["unitCode"] = unit
    return out


def _rel(target: str | list[str]) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def _geo(kind: str, coordinates: object) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": kind, "coordinates": coordinates}}


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def road_segment(district: str, edge: str, line: Sequence[Point], lanes: int, max_kmh: float,
                 length_m: float, speed_kmh: float | None, vehicles: int, at: str) -> Entity:
    """A road with its shape, limits and live state; congestion from speed over free flow."""
    from cityhub.brain.congestion import road_index

    speed = max_kmh if speed_kmh is None else speed_kmh
    index = road_index(speed, max_kmh)
    return {
        "id": urn("RoadSegment", district, edge), "type": "RoadSegment",
        "location": _geo("LineString", [list(p) for p in line]),
        "name": _prop(edge), "totalLaneNumber": _prop(lanes),
        "maximumAllowedSpeed": _prop(round(max_kmh, 1), unit="KMH"),
        "freeFlowSpeed": _prop(round(max_kmh, 1), unit="KMH"),
        "length": _prop(round(length_m, 1), unit="MTR"),
        "averageSpeed": _prop(round(speed, 1), at, "KMH"),
        "congestionIndex": _prop(index, at), "congestionLevel": _prop(level(index), at),
        "vehicleCount": _prop(vehicles, at),
    }


def traffic_flow(district: str, lane: str, edge: str, where: Point, intensity: int,
                 speed_kmh: float, occupancy: float, start: str, end: str) -> Entity:
    """What one induction loop counted over [start, end]."""
    return {
        "id": urn("TrafficFlowObserved", district, lane), "type": "TrafficFlowObserved",
        "location": _geo("Point", list(where)),
        "refRoadSegment": _rel(urn("RoadSegment", district, edge)),
        "laneId": _prop(lane), "intensity": _prop(intensity, end),
        "averageVehicleSpeed": _prop(round(speed_kmh, 1), end, "KMH"),
        "occupancy": _prop(round(occupancy, 4), end, "C62"),
        "dateObservedFrom": _prop(start), "dateObservedTo": _prop(end),
    }


def traffic_signal(district: str, tls: str, where: Point, phase: int, state: str,
                   controller: str, roads: Sequence[str], at: str) -> Entity:
    return {
        "id": urn("TrafficSignal", district, tls), "type": "TrafficSignal",
        "location": _geo("Point", list(where)), "name": _prop(tls),
        "currentPhase": _prop(phase, at), "phaseState": _prop(state, at),
        "controller": _prop(controller),
        "refRoadSegment": _rel([urn("RoadSegment", district, r) for r in roads]),
    }


def congestion_index(district: str, area: str, polygon: Sequence[Point], index: float,
                     vehicle_km: float, at: str) -> Entity:
    ring = [list(p) for p in polygon]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return {
        "id": urn("CongestionIndex", district, area), "type": "CongestionIndex",
        "location": _geo("Polygon", [ring]), "areaName": _prop(area),
        "congestionIndex": _prop(index, at), "congestionLevel": _prop(level(index), at),
        "vehicleKilometres": _prop(round(vehicle_km, 3), at, "KMT"),
    }
