"""Subscriptions remember their owner: notifications carry only what the owner may read
(minimised to its grant), and a principal sees and changes only its own subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.config import Settings
from cityhub.governance.events import MemorySink
from tests.api.test_subscriptions import FAST, Receiver
from tests.governance.conftest import ACCOUNTS, API, Hub, spot
from tests.governance.test_enforcement import PURPOSE, grant


@pytest.fixture
async def live_hub(tmp_path: Path) -> AsyncIterator[Hub]:
    settings = Settings(data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'h.db'}",
                        public_url="http://testserver")
    app = create_app(settings)
    app.state.notifier_config = FAST
    app.state.audit = MemorySink()  # events kept in memory for the assertions
    async with app.router.lifespan_context(app):
        issuer = app.state.access.issuer
        for name in ("transport", "ecology", "bureau"):
            issuer.add_department(name)
        for subject, kind, department, roles, clearance in ACCOUNTS:
            issuer.add_account(subject, kind, department, roles, clearance)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as http:
            yield Hub(app, http, issuer, app.state.audit)


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    granted, citizen = Receiver(), Receiver()
    yield granted, citizen
    granted.close()
    citizen.close()


def subscription(url: str) -> dict[str, object]:
    return {"type": "Subscription", "entities": [{"type": "ParkingSpot"}],
            "notification": {"endpoint": {"uri": url}, "format": "keyValues"}}


async def test_notifications_carry_only_what_the_owner_may_read(
        live_hub: Hub, receivers: tuple[Receiver, Receiver]) -> None:
    hub, (granted, citizen) = live_hub, receivers
    steward = hub.token("stella")
    await hub.http.put("/catalogue/datasets/parking", headers=steward, json={
        "title": "Parking", "entityType": "ParkingSpot", "owner": "transport",
        "tier": "sensitive"})
    await grant(hub, hub.token, attributes=["status"])
    eric = {**hub.token("eric"), "Cityhub-Purpose": PURPOSE}
    made = await hub.http.post(f"{API}/subscriptions", headers=eric,
                               json=subscription(granted.url))
    assert made.status_code == 201, made.text
    sub_id = made.headers["Location"].rsplit("/", 1)[-1]
    cora = hub.token("cora")
    assert (await hub.http.post(f"{API}/subscriptions", headers=cora,
                                json=subscription(citizen.url))).status_code == 201
    device = hub.token("sensor-1")
    for version, status in enumerate(("free", "occupied")):
        written = await hub.http.post(f"{API}/entityOperations/upsert", headers=device,
                                      json=[spot(1, status)])
        assert written.status_code in (201, 204)
        await granted.until(lambda got, n=version: len(got) > n)
    assert [set(e) for e in granted.data()] == [{"id", "type", "status"}] * 2
    assert [e["status"] for e in granted.data()] == ["free", "occupied"]
    assert citizen.received == []
    # Each principal sees and manages its own subscriptions only.
    assert len((await hub.http.get(f"{API}/subscriptions", headers=eric)).json()) == 1
    assert (await hub.http.get(f"{API}/subscriptions/{sub_id}", headers=cora)).status_code == 404
    assert (await hub.http.delete(f"{API}/subscriptions/{sub_id}",
                                  headers=cora)).status_code == 404
    assert len((await hub.http.get(f"{API}/subscriptions", headers=steward)).json()) == 2
