"""The hub's own services decided by the policy decision point (policies/services.cedar): the
audit ledger, private aggregates, quality scores, the device registry and dead letters. Each
refuses a caller without a token (401), a principal of the wrong kind or role (403) and answers
the right one; the private aggregate is charged to the real principal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.governance.conftest import Hub

AGGREGATE = "/privacy/datasets/air-quality/aggregate"
QUERY = {"attribute": "pm25", "statistic": "count", "epsilon": 0.5, "bbox": "2.0,41.0,2.2,41.1",
         "start": "2026-11-23T00:00:00Z", "end": "2026-11-23T10:00:00Z"}
DEVICE = {"id": "counter-9", "type": "TrafficFlowObserved", "owner": "transport",
          "location": [116.4, 39.9]}


async def status(hub: Hub, method: str, path: str, who: str | None, **kwargs: Any) -> int:
    headers = hub.token(who) if who else {}
    response = await hub.http.request(method, path, headers=headers, **kwargs)
    assert response.headers["content-type"].startswith(
        "application/problem+json" if response.status_code >= 400 else "application/json"), \
        response.text
    return response.status_code


async def test_signing_heads_and_reading_records_need_an_auditor_or_steward(hub: Hub) -> None:
    assert await status(hub, "POST", "/audit/head", None) == 401
    assert await status(hub, "POST", "/audit/head", "tina") == 403
    assert await status(hub, "POST", "/audit/head", "cora") == 403
    assert await status(hub, "POST", "/audit/head", "audra") == 201
    assert await status(hub, "POST", "/audit/head", "stella") == 201
    assert await status(hub, "GET", "/audit/leaves", "eric") == 403
    assert await status(hub, "GET", "/audit/leaves", "audra") == 200
    refused = [e for e in hub.audit.events if e.action == "policy.decide"
               and e.actor.endswith("tina") and e.decision == "deny"]
    assert refused
    assert refused[0].subject == "cityhub:audit-ledger"


async def test_heads_and_proofs_are_for_anyone_but_devices(hub: Hub) -> None:
    assert await status(hub, "POST", "/audit/head", "stella") == 201
    assert await status(hub, "GET", "/audit/head", None) == 401
    assert await status(hub, "GET", "/audit/head", "sensor-1") == 403
    assert await status(hub, "GET", "/audit/head", "cora") == 200
    assert await status(hub, "GET", "/audit/heads", "tina") == 200
    assert await status(hub, "GET", "/audit/proof/consistency", "cora",
                        params={"first": 0, "second": 0}) == 200


async def test_the_steward_report_needs_an_auditor_or_steward(
        hub: Hub, parking: Callable[[str], dict[str, str]]) -> None:
    path = "/audit/datasets/parking/report"
    assert await status(hub, "GET", path, None) == 401
    assert await status(hub, "GET", path, "tina") == 403  # even the owning department
    assert await status(hub, "GET", path, "audra") == 200
    assert await status(hub, "GET", path, "stella") == 200


async def test_private_aggregates_answer_citizens_and_charge_the_real_principal(
        hub: Hub) -> None:
    assert await status(hub, "GET", AGGREGATE, None, params=QUERY) == 401
    assert await status(hub, "GET", AGGREGATE, "sensor-1", params=QUERY) == 403
    response = await hub.http.get(AGGREGATE, params=QUERY, headers=hub.token("cora"))
    assert response.status_code == 200, response.text
    assert response.json()["budget"]["spent"] == 0.5
    answered = [e for e in hub.audit.events if e.action == "privacy.aggregate"]
    assert [e.actor for e in answered] == [hub.app.state.access.issuer.issuer + "#cora"]
    assert await status(hub, "GET", "/privacy/datasets/air-quality/budget", "cora") == 200
    assert await status(hub, "GET", "/privacy/datasets/air-quality/budget", "sensor-1") == 403
    listed = (await hub.http.get("/privacy/budgets", headers=hub.token("sensor-1"))).json()
    assert listed == []


async def test_quality_scores_are_for_anyone_but_devices(hub: Hub) -> None:
    path = "/quality/datasets/air-quality"
    assert await status(hub, "GET", path, None) == 401
    assert await status(hub, "GET", path, "sensor-1") == 403
    assert await status(hub, "GET", path, "cora") == 200
    everything = (await hub.http.get("/quality", headers=hub.token("cora"))).json()
    assert "air-quality" in {d["dataset"] for d in everything["datasets"]}
    assert (await hub.http.get("/quality", headers=hub.token("sensor-1"))).json()["datasets"] \
        == []


async def test_devices_are_registered_by_their_department_or_a_steward(hub: Hub) -> None:
    register = "/devices/v1/devices"
    assert await status(hub, "POST", register, None, json=DEVICE) == 401
    assert await status(hub, "POST", register, "eric", json=DEVICE) == 403  # ecology
    assert await status(hub, "POST", register, "cora", json=DEVICE) == 403
    assert await status(hub, "POST", register, "tina", json=DEVICE) == 201  # transport
    assert await status(hub, "POST", register, "stella",
                        json={**DEVICE, "id": "counter-10", "owner": "ecology"}) == 201
    revoke = "/devices/v1/devices/counter-9/revoke"
    assert await status(hub, "POST", revoke, "eric") == 403
    assert await status(hub, "POST", revoke, "tina") == 200
    assert await status(hub, "POST", "/devices/v1/devices/counter-9/rotate", "eric") == 403
    assert await status(hub, "GET", register, "cora") == 403
    assert await status(hub, "GET", register, "sensor-1") == 403
    assert await status(hub, "GET", register, "eric") == 200
    assert await status(hub, "GET", "/devices/v1/devices/counter-9", "tina") == 200
    assert await status(hub, "GET", "/ingest/v1/dead-letters", "cora") == 403
    assert await status(hub, "GET", "/ingest/v1/dead-letters", "tina") == 200
