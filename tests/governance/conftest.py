"""Fixtures of the governance tests: a ledger on each real back-end with a signing key, and an
authenticated hub in-process (departments, accounts and tokens of the built-in issuer, and a
catalogue with a sensitive dataset owned by the transport department)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from cityhub.api.app import create_app
from cityhub.config import Settings
from cityhub.governance.datasets import Tier
from cityhub.governance.events import MemorySink
from cityhub.governance.identity import PrincipalKind
from cityhub.governance.issuer import BuiltinIssuer
from cityhub.governance.ledger import Ledger
from cityhub.governance.signing import load_or_create_key
from cityhub.store.database import Database, open_database

API = "/ngsi-ld/v1"
PARKING = "https://uri.etsi.org/ngsi-ld/default-context/ParkingSpot"


@dataclass
class Hub:
    app: FastAPI
    http: httpx.AsyncClient
    issuer: BuiltinIssuer
    audit: MemorySink

    def token(self, subject: str, purpose: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.issue(subject, purpose=purpose)}"}


ACCOUNTS: list[tuple[str, PrincipalKind, str, tuple[str, ...], Tier]] = [
    ("tina", PrincipalKind.STAFF, "transport", (), Tier.SENSITIVE),
    ("eric", PrincipalKind.STAFF, "ecology", (), Tier.SENSITIVE),
    ("low", PrincipalKind.STAFF, "ecology", (), Tier.INTERNAL),
    ("sensor-1", PrincipalKind.DEVICE, "transport", (), Tier.PUBLIC),
    ("cora", PrincipalKind.CITIZEN, "", (), Tier.PUBLIC),
    ("stella", PrincipalKind.STAFF, "bureau", ("steward",), Tier.CORE),
    ("audra", PrincipalKind.STAFF, "bureau", ("auditor",), Tier.PUBLIC),
]


@pytest.fixture
def auth_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'hub.db'}",
                    public_url="http://testserver", notify_workers=0)


@asynccontextmanager
async def running_hub(settings: Settings) -> AsyncIterator[Hub]:
    """An authenticated hub in-process with the departments and ACCOUNTS."""
    app = create_app(settings)
    app.state.audit = MemorySink()  # events kept in memory for the assertions
    async with app.router.lifespan_context(app):
        issuer: BuiltinIssuer = app.state.access.issuer
        for name in ("transport", "ecology", "bureau"):
            issuer.add_department(name)
        for subject, kind, department, roles, clearance in ACCOUNTS:
            issuer.add_account(subject, kind, department, roles, clearance)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Hub(app, http, issuer, app.state.audit)


@pytest.fixture
async def hub(auth_settings: Settings) -> AsyncIterator[Hub]:
    async with running_hub(auth_settings) as running:
        yield running


@pytest.fixture
async def store_hub(store_url: str, tmp_path: Path) -> AsyncIterator[Hub]:
    """The hub on each real back-end in turn (SQLite, PostgreSQL)."""
    settings = Settings(data_dir=tmp_path / "data", store_url=store_url,
                        public_url="http://testserver", notify_workers=0)
    async with running_hub(settings) as running:
        yield running


def spot(n: int, status: str = "free", lon: float = 116.40) -> dict[str, object]:
    return {"id": f"urn:ngsi-ld:ParkingSpot:transport:{n}", "type": "ParkingSpot",
            "status": {"type": "Property", "value": status,
                       "observedAt": "2026-11-23T08:00:00Z"},
            "plate": {"type": "Property", "value": f"京A{n:05d}"},
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [lon, 39.9]}}}


@pytest.fixture
async def parking(hub: Hub) -> Callable[[str], dict[str, str]]:
    """A sensitive ParkingSpot dataset of transport with three spots written by its device;
    returns the token maker."""
    await add_parking(hub)
    return lambda subject: hub.token(subject)


async def add_parking(hub: Hub) -> None:
    """Catalogue the sensitive parking dataset and write three spots with transport's device."""
    steward = hub.token("stella")
    response = await hub.http.put("/catalogue/datasets/parking", headers=steward, json={
        "title": "Parking occupancy", "entityType": "ParkingSpot", "owner": "transport",
        "tier": "sensitive", "updateFrequency": "PT15M", "licence": "CC-BY-4.0",
        "attributes": ["status", "plate", "location"]})
    assert response.status_code == 204, response.text
    written = await hub.http.post(f"{API}/entityOperations/upsert",
                                  headers=hub.token("sensor-1"),
                                  json=[spot(1), spot(2, "occupied"), spot(3, lon=117.5)])
    assert written.status_code == 201, written.text


@pytest.fixture
def db(store_url: str) -> Iterator[Database]:
    database = open_database(store_url)
    yield database
    database.close()


@pytest.fixture
def ledger(db: Database) -> Ledger:
    return Ledger(db)


@pytest.fixture
def key(tmp_path: Path) -> Ed25519PrivateKey:
    return load_or_create_key(tmp_path / "keys" / "audit.pem")
