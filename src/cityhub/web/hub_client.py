"""A small sync client of a running hub's NGSI-LD API (httpx): batch upserts, reads, status.

`cityhub demo` checks the page with it; bench/page.py writes the fixture district
(web/sample_district.py) through it, the way the twin and the edge write theirs: batch
upserts over HTTP.
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
