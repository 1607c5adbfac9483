"""The hub's own services decided by the policy decision point (policies/services.cedar): the
audit ledger, private aggregates, quality scores, the device registry and dead letters. Each
refuses a caller without a token (401), a principal of the wrong kind or role (403) and answers
the right one; the private aggregate is charged to the real principal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cityhub.config import Settings
from tests.governance.conftest import API, Hub, running_hub

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


SENSITIVE_FLOW = """
[[dataset]]
id = "flow"
type = "TrafficFlowObserved"
owner = "transport"
tier = "sensitive"
ranges = { intensity = [0, 100] }
"""


async def test_a_private_aggregate_covers_data_the_asker_may_not_read(
        tmp_path: Path) -> None:
    """The aggregate is decided as `aggregate`, then computed over the whole dataset: a
    citizen who may not read a single sensitive reading still gets the private count."""
    catalogue = tmp_path / "catalogue.toml"
    catalogue.write_text(SENSITIVE_FLOW)
    settings = Settings(data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'h.db'}",
                        public_url="http://testserver", notify_workers=0,
                        datasets_file=catalogue, privacy_max_epsilon=100,
                        privacy_budget=1000)
    async with running_hub(settings) as hub:
        for n in range(3):
            written = await hub.http.post(f"{API}/temporal/entities",
                                          headers=hub.token("sensor-1"), json={
                "id": f"urn:ngsi-ld:TrafficFlowObserved:transport:{n}",
                "type": "TrafficFlowObserved",
                "location": {"type": "GeoProperty",
                             "value": {"type": "Point", "coordinates": [116.4, 39.9]}},
                "intensity": [{"type": "Property", "value": 10,
                               "observedAt": f"2026-11-23T00:0{m}:00Z"} for m in range(3)]})
            assert written.status_code == 201, written.text
        cora = hub.token("cora")
        unread = await hub.http.get(f"{API}/entities", params={"type": "TrafficFlowObserved"},
                                    headers=cora)
        assert unread.json() == []
        answer = await hub.http.get("/privacy/datasets/flow/aggregate", headers=cora, params={
            "attribute": "intensity", "statistic": "count", "epsilon": 100,
            "bbox": "116,39,117,40", "cell": 1, "start": "2026-11-23T00:00:00Z",
            "end": "2026-11-23T01:00:00Z", "contributions": 1})
        assert answer.status_code == 200, answer.text
        assert abs(answer.json()["groups"][0]["value"] - 3) < 0.2  # 3 devices, scale 0.01
        assert not [e for e in hub.audit.events if e.action == "entity.read"
                    and e.actor.endswith("#cora")]
