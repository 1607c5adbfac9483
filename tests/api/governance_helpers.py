"""Shared by the governance API tests: a hub app with its state reachable, and seeded history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from cityhub.api.app import create_app
from cityhub.config import Settings

TEMPORAL = "/ngsi-ld/v1/temporal/entities"
ENTITIES = "/ngsi-ld/v1/entities"
T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


@asynccontextmanager
async def hub(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield app, http


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def seed_air_quality(http: httpx.AsyncClient, local_id: str, lon: float, lat: float,
                           values: list[Any], *, start: datetime = T0,
                           step: timedelta = timedelta(minutes=1), unit: str = "GQ") -> None:
    """An AirQualityObserved entity with a pm25 history of `values`, one per `step`."""
    body = {
        "id": f"urn:ngsi-ld:AirQualityObserved:ecology:{local_id}",
        "type": "AirQualityObserved",
        "location": [{"type": "GeoProperty",
                      "value": {"type": "Point", "coordinates": [lon, lat]}}],
        "pm25": [{"type": "Property", "value": v, "observedAt": iso(start + i * step),
                  "unitCode": unit} for i, v in enumerate(values)],
    }
    response = await http.post(TEMPORAL, json=body)
    assert response.status_code in (201, 204), response.text
