"""Sign-in and what each demo person sees on the operations page (authentication on)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.config import Settings
from cityhub.governance.datasets import Tier
from cityhub.governance.events import MemorySink
from cityhub.governance.identity import PrincipalKind
from cityhub.store import open_store
from cityhub.web import demo_identity
from cityhub.web import sample_district as sd

PUBLIC = {"roads", "indices", "stations"}
INTERNAL = {"signals", "sensors", "alerts"}


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[Any, httpx.AsyncClient, dict[str, str]]]:
    """An authenticated hub with the demo's identities and the sample district in it."""
    settings = Settings(data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path}/h.db",
                        public_url="http://testserver", auth="enabled")
    store = open_store(settings.resolved_store_url())  # as `cityhub demo`: before the hub
    try:
        made = demo_identity.prepare(store.db, settings.auth_issuer, settings.auth_audience,
                                     tmp_path / "demo")
    finally:
        store.close()
    app = create_app(settings)
    app.state.audit = MemorySink()
    async with app.router.lifespan_context(app):
        issuer = app.state.access.issuer
        issuer.add_account("seeder", PrincipalKind.STAFF, "operations", ("steward",), Tier.CORE)
        seeder = {"Authorization": f"Bearer {issuer.issue('seeder')}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            answer = await http.post("/ngsi-ld/v1/entityOperations/upsert", headers=seeder,
                                     json=sd.entities(sd.build(size=3, sensors=25)))
            assert answer.status_code in (201, 204), answer.text
            yield app, http, made.passwords


async def sign_in(http: httpx.AsyncClient, name: str, password: str,
                  purpose: str | None = None) -> dict[str, str]:
    body = {"username": name, "password": password} | ({"purpose": purpose} if purpose else {})
    answer = await http.post("/auth/login", json=body)
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def view(http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> Any:
    answer = await http.get("/ops/view", headers=headers or {})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_an_anonymous_visitor_sees_the_public_district_only(hub: Any) -> None:
    _, http, _ = hub
    assert (await http.get("/")).status_code == 200
    assert (await http.get("/static/ops.js")).status_code == 200
    body = await view(http)
    assert set(body["layers"]) == PUBLIC
    assert set(body["denied"]) == INTERNAL | {"meters"}
    assert body["reader"]["kind"] == "citizen"
    assert body["summary"]["energy"] is None  # no total of meters it may not read
    assert body["summary"]["congestion"]["index"] is not None
    assert (await http.get("/ngsi-ld/v1/entities", params={"type": "Road"})).status_code == 401


async def test_the_citizen_sees_public_data_and_the_transport_officer_internal_data_too(
        hub: Any) -> None:
    _, http, passwords = hub
    citizen = await view(http, await sign_in(http, "citizen", passwords["citizen"]))
    assert citizen["reader"] == {"subject": "citizen", "kind": "citizen", "department": None}
    assert set(citizen["layers"]) == PUBLIC
    officer = await view(http, await sign_in(http, "transport.officer",
                                             passwords["transport.officer"]))
    assert set(officer["layers"]) == PUBLIC | INTERNAL
    assert officer["denied"] == ["meters"]  # the energy department's sensitive data
    assert len(officer["layers"]["sensors"]["id"]) == 25


async def test_another_department_sees_the_energy_meters_only_under_its_grant(
        hub: Any) -> None:
    app, http, passwords = hub
    purpose = demo_identity.GRANT_PURPOSE
    planner = await view(http, await sign_in(http, "planning.officer",
                                             passwords["planning.officer"], purpose))
    assert "meters" in planner["layers"]
    assert planner["summary"]["energy"]["meters"] == 8
    without = await view(http, await sign_in(http, "planning.officer",
                                             passwords["planning.officer"]))
    assert "meters" in without["denied"]  # the grant is bound to its purpose
    ecology = await view(http, await sign_in(http, "ecology.officer",
                                             passwords["ecology.officer"], purpose))
    assert "meters" in ecology["denied"]  # no grant for the ecology department
    reads = [e for e in app.state.audit.events
             if e.action == "entity.read" and e.subject == "ops-layer:meters"]
    assert [(e.actor.split("#")[-1], e.grant is not None) for e in reads] == [
        ("planning.officer", True)]


async def test_a_wrong_password_and_an_unknown_user_get_the_same_refusal(hub: Any) -> None:
    _, http, passwords = hub
    wrong = await http.post("/auth/login", json={"username": "citizen",
                                                 "password": "not-the-password"})
    unknown = await http.post("/auth/login", json={"username": "nobody",
                                                   "password": passwords["citizen"]})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert wrong.json()["detail"] == unknown.json()["detail"]
    service = await http.post("/auth/login", json={"username": demo_identity.TWIN,
                                                   "password": "x" * 12})
    assert service.status_code == 401  # services have tokens, not passwords


async def test_a_malformed_sign_in_never_echoes_the_password(hub: Any) -> None:
    _, http, _ = hub
    secret = "hunter2-hunter2"
    for body in ({"password": secret}, {"username": 3, "password": secret},
                 {"username": "citizen", "password": secret, "purpose": ["x"]}):
        answer = await http.post("/auth/login", json=body)
        assert answer.status_code == 400
        assert secret not in answer.text


async def test_a_second_prepare_keeps_accounts_and_passwords(hub: Any, tmp_path: Path) -> None:
    app, http, passwords = hub
    again = demo_identity.prepare(app.state.store.db, app.state.settings.auth_issuer,
                                  app.state.settings.auth_audience, tmp_path / "demo")
    assert again.passwords == passwords
    assert (tmp_path / "demo" / "accounts.json").stat().st_mode & 0o077 == 0
    await sign_in(http, "citizen", passwords["citizen"])  # still the same password
    twin = {"Authorization": "Bearer " + again.tokens[demo_identity.TWIN].read_text()}
    road = {"id": "urn:ngsi-ld:RoadSegment:demo:new", "type": "RoadSegment",
            "congestionLevel": {"type": "Property", "value": "light"}}
    answer = await http.post("/ngsi-ld/v1/entityOperations/upsert", json=[road], headers=twin)
    assert answer.status_code in (201, 204), answer.text  # the twin may write its roads
