"""Writing the sample district into a running hub over its NGSI-LD API (httpx, sync).

The demo's seed step and pulse, the browser tests and bench/page.py use it, so the district
reaches the hub the way the twin and the devices will: batch upserts over HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from cityhub.web import sample_district as sd

log = logging.getLogger(__name__)
BATCH = 1000
PAGE = 1000


@dataclass
class HubClient:
    """A small client of one hub: batch upsert, existence check, paged keyValues reads."""

    base_url: str
    token: str | None = None
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.base_url.rstrip("/") + "/ngsi-ld/v1",
                                  headers=headers, timeout=self.timeout_s)

    def close(self) -> None:
        self._http.close()

    def upsert(self, entities: list[dict[str, Any]], update: bool = False) -> None:
        """Batch upsert (replace, or merge attributes with `update`), BATCH entities a request."""
        params = {"options": "update"} if update else {}
        for start in range(0, len(entities), BATCH):
            answer = self._http.post("/entityOperations/upsert", json=entities[start:start + BATCH],
                                     params=params)
            if answer.status_code not in (200, 201, 204):
                raise RuntimeError(f"upsert refused ({answer.status_code}): {answer.text[:300]}")

    def page_status(self, path: str = "/") -> int:
        """The HTTP status of a path outside the NGSI-LD API (the page, /health)."""
        return httpx.get(self.base_url.rstrip("/") + path, timeout=self.timeout_s).status_code

    def exists(self, entity_id: str) -> bool:
        answer = self._http.get(f"/entities/{entity_id}")
        return answer.status_code == 200

    def key_values(self, entity_type: str, pick: str) -> Iterator[dict[str, Any]]:
        """Every entity of a type in keyValues form, page by page."""
        offset = 0
        while True:
            answer = self._http.get("/entities", params={
                "type": entity_type, "pick": pick, "options": "keyValues",
                "limit": PAGE, "offset": offset})
            answer.raise_for_status()
            page = answer.json()
            yield from page
            if len(page) < PAGE:
                return
            offset += PAGE


def seed(client: HubClient, state: sd.DistrictState) -> int:
    """Write the whole district; returns the number of entities written."""
    everything = sd.entities(state)
    client.upsert(everything)
    log.info("event=district_seeded entities=%d", len(everything))
    return len(everything)


def restore(client: HubClient, state: sd.DistrictState) -> None:
    """Take the current values stored in the hub (a second demo run resumes from them)."""
    roads = {r.id: r for r in state.roads}
    for item in client.key_values("RoadSegment", "id,congestionIndex"):
        if item["id"] in roads and isinstance(item.get("congestionIndex"), int | float):
            roads[item["id"]].index = float(item["congestionIndex"])
    for item in client.key_values("TrafficSignal", "id,currentPhase"):
        if item["id"] in state.phases and isinstance(item.get("currentPhase"), int):
            state.phases[item["id"]] = item["currentPhase"] % len(sd.PHASE_STATES)
    for item in client.key_values("AirQualityObserved", "id,airQualityIndex"):
        if item["id"] in state.stations and isinstance(item.get("airQualityIndex"), int | float):
            state.stations[item["id"]] = (state.stations[item["id"]][0],
                                          float(item["airQualityIndex"]))
    for item in client.key_values("EnergyMeter", "id,activePower,totalActiveEnergyImport"):
        if item["id"] in state.meters:
            spot, power, total = state.meters[item["id"]]
            state.meters[item["id"]] = (spot, float(item.get("activePower", power)),
                                        float(item.get("totalActiveEnergyImport", total)))
    for item in client.key_values("Device", "id,deviceState"):
        if item["id"] in state.sensors and isinstance(item.get("deviceState"), str):
            spot, _, road = state.sensors[item["id"]]
            state.sensors[item["id"]] = (spot, item["deviceState"], road)
