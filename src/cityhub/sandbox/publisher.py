"""Publishes the running twin into an NGSI-LD hub: roads with their congestion, induction loops
as TrafficFlowObserved, signals with their current phase, area and city congestion indices.

Called by the twin every simulated minute (`observe`); positions are WGS84 (`sandbox.geo`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from cityhub.brain.congestion import area_index
from cityhub.sandbox import entities
from cityhub.sandbox.geo import ToLonLat, converter

if TYPE_CHECKING:
    from cityhub.sandbox.twin import Twin

log = logging.getLogger(__name__)
LOOP_PERIOD_S = 60
BATCH = 500


class PublishError(RuntimeError):
    """The hub refused or could not be reached."""


def induction_loops(net: Path, out: Path) -> Path:
    """An additional file with one E1 loop 10 m before the stop line of every signalised lane."""
    import sumolib

    network = sumolib.net.readNet(str(net), withPrograms=True)
    lanes = {}
    for tls in network.getTrafficLights():
        for incoming, _outgoing, _index in tls.getConnections():
            lanes[incoming.getID()] = incoming.getLength()
    lines = ["<additional>"]
    for lane, length in sorted(lanes.items()):
        pos = max(0.0, length - 10.0)
        lines.append(f'  <inductionLoop id="loop_{lane}" lane="{lane}" pos="{pos:.2f}" '
                     f'period="{LOOP_PERIOD_S}" file="NUL"/>')
    lines.append("</additional>")
    out.write_text("\n".join(lines) + "\n")
    return out


class HubPublisher:
    """Upserts the twin's entities into `hub` (base URL of the hub, /ngsi-ld/v1 is appended)."""

    def __init__(self, hub: str, district: str, client: httpx.Client | None = None,
                 origin: tuple[float, float] | None = None) -> None:
        self.base = hub.rstrip("/") + "/ngsi-ld/v1"
        self.district = district
        self.client = client or httpx.Client(timeout=10.0)
        self.origin = origin
        self.to_lonlat: ToLonLat | None = None
        self.started = datetime.now(UTC)
        self.published = 0

    def _time(self, twin: Twin, now: float) -> datetime:
        return self.started + timedelta(seconds=now - twin.begin)

    def _post(self, batch: Sequence[dict[str, Any]]) -> None:
        for first in range(0, len(batch), BATCH):
            chunk = list(batch[first:first + BATCH])
            try:
                answer = self.client.post(f"{self.base}/entityOperations/upsert",
                                          params={"options": "update"}, json=chunk)
            except httpx.HTTPError as error:
                raise PublishError(f"cannot reach the hub at {self.base}: {error}") from None
            if answer.status_code >= 400:
                raise PublishError(f"the hub answered {answer.status_code}: {answer.text[:200]}")
            self.published += len(chunk)

    def observe(self, twin: Twin, now: float) -> None:
        """Publish the state of the twin at simulated time `now`."""
        api = twin.api
        if self.to_lonlat is None:
            self.to_lonlat = (converter(api, twin.net) if self.origin is None
                              else converter(api, twin.net, self.origin))
        at = entities.stamp(self._time(twin, now))
        since = entities.stamp(self._time(twin, now - LOOP_PERIOD_S))
        convert = self.to_lonlat
        readings = {r.road_id: r for r in twin.road_readings(60.0)}
        batch: list[dict[str, Any]] = []
        for road in twin.roads:
            shape = [convert(x, y) for x, y in api.lane.getShape(f"{road.edge_id}_0")]
            reading = readings.get(road.edge_id)
            batch.append(entities.road_segment(
                self.district, road.edge_id, shape, int(api.edge.getLaneNumber(road.edge_id)),
                road.free_flow_kmh, road.length_m, reading.speed_kmh if reading else None,
                int(api.edge.getLastStepVehicleNumber(road.edge_id)), at))
        for loop in api.inductionloop.getIDList():
            lane = api.inductionloop.getLaneID(loop)
            x, y = api.lane.getShape(lane)[-1]
            speed = float(api.inductionloop.getLastIntervalMeanSpeed(loop))
            batch.append(entities.traffic_flow(
                self.district, lane, api.lane.getEdgeID(lane), convert(x, y),
                int(api.inductionloop.getLastIntervalVehicleNumber(loop)),
                max(0.0, speed) * 3.6, float(api.inductionloop.getLastIntervalOccupancy(loop))
                / 100.0, since, at))
        for junction in twin.junctions:
            state = api.trafficlight.getRedYellowGreenState(junction.tls_id)
            head = twin.heads.get(junction.tls_id)
            phase = head.phase if head else int(api.trafficlight.getPhase(junction.tls_id))
            x, y = api.lane.getShape(junction.incoming[0])[-1]
            roads = sorted({api.lane.getEdgeID(lane) for lane in junction.incoming})
            batch.append(entities.traffic_signal(
                self.district, junction.tls_id, convert(x, y), phase, state,
                twin.controller.identity, roads, at))
        batch += self._areas(twin, list(readings.values()), at)
        self._post(batch)
        log.info("published sim_time=%.0f entities=%d", now, len(batch))

    def _areas(self, twin: Twin, readings: list[Any], at: str) -> list[dict[str, Any]]:
        assert self.to_lonlat is not None
        (x0, y0), (x1, y1) = twin.api.simulation.getNetBoundary()
        mx, my = twin.area_split
        boxes = {"southwest": (x0, y0, mx, my), "southeast": (mx, y0, x1, my),
                 "northwest": (x0, my, mx, y1), "northeast": (mx, my, x1, y1),
                 "city": (x0, y0, x1, y1)}
        out = []
        for area, (ax0, ay0, ax1, ay1) in boxes.items():
            chosen = readings if area == "city" else [r for r in readings if r.area == area]
            index = area_index(chosen)
            if index is None:
                continue
            polygon = [self.to_lonlat(x, y) for x, y in
                       ((ax0, ay0), (ax1, ay0), (ax1, ay1), (ax0, ay1))]
            out.append(entities.congestion_index(
                self.district, area, polygon, index, sum(r.vehicle_km for r in chosen), at))
        return out
