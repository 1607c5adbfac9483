"""/ops/summary, the page and its assets, served offline by the hub."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from cityhub.web import sample_district as sd

WEB = Path(__file__).resolve().parents[2] / "src" / "cityhub" / "web"


async def seed(client: httpx.AsyncClient, state: sd.DistrictState) -> None:
    answer = await client.post("/ngsi-ld/v1/entityOperations/upsert", json=sd.entities(state))
    assert answer.status_code in (201, 204), answer.text


async def test_summary_of_the_sample_district(client: httpx.AsyncClient) -> None:
    state = sd.build(size=3, sensors=25)
    await seed(client, state)
    body = (await client.get("/ops/summary")).json()
    assert body["counts"] == {"roads": 12, "signals": 9, "sensors": 25, "stations": 6,
                              "meters": 8, "alerts": 2, "indices": 1}  # alerts: the open ones
    assert body["congestion"] == {"index": sd.city_index(state), "id": sd.CITY_INDEX_ID}
    aqi = [a for _, a in state.stations.values()]
    assert body["airQuality"]["meanAqi"] == round(sum(aqi) / len(aqi), 2)
    assert body["energy"]["activePowerKw"] == round(sum(p for _, p, _ in state.meters.values()), 1)
    assert body["alerts"]["open"] == 2
    online = sum(1 for _, status, _ in state.sensors.values() if status == "ok")
    assert body["sensors"] == {"reporting": 25, "online": online}
    rows = {row["key"]: row for row in body["scorecard"]}
    assert rows["congestionIndex"]["met"] == (sd.city_index(state) <= 4.0)
    assert rows["sensorAvailability"]["value"] == round(100 * online / 25, 1)
    assert body["features"] == {"audit": "/audit/leaves", "login": "/auth/login",
                                "open311": None}


async def test_summary_of_an_empty_hub_has_no_values_and_no_error(
        client: httpx.AsyncClient) -> None:
    answer = await client.get("/ops/summary")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body["counts"].values()) == {0}
    assert body["congestion"]["index"] is None
    assert all(row["met"] is None for row in body["scorecard"])


async def test_the_first_view_is_one_gzipped_answer_with_every_layer_as_columns(
        client: httpx.AsyncClient) -> None:
    state = sd.build(size=3, sensors=25)
    await seed(client, state)
    answer = await client.get("/ops/view", headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "gzip"
    assert int(answer.headers["content-length"]) < len(answer.content)  # httpx inflated it
    body = answer.json()
    assert body["denied"] == []
    sensors = body["layers"]["sensors"]
    assert sorted(sensors) == ["id", "state", "x", "y"]
    did = sorted(state.sensors)[3]
    at = sensors["id"].index(did)
    spot, status, _ = state.sensors[did]
    assert (sensors["x"][at], sensors["y"][at], sensors["state"][at]) == (*spot, status)
    roads = body["layers"]["roads"]
    road = state.roads[0]
    assert roads["line"][roads["id"].index(road.id)] == [v for p in road.line for v in p]
    assert body["layers"]["alerts"]["severity"] == ["high", "low"]  # the closed one is left out
    assert body["history"][-1][1] == sd.city_index(state)
    assert body["reader"]["subject"] == "local-operator"


async def test_the_first_view_follows_later_writes_without_reading_the_store_again(
        client: httpx.AsyncClient) -> None:
    state = sd.build(size=3, sensors=25)
    await seed(client, state)
    before = (await client.get("/ops/view")).json()
    did = sorted(state.sensors)[0]
    patch = {"deviceState": {"type": "Property", "value": "faulty"}}
    assert (await client.patch(f"/ngsi-ld/v1/entities/{did}/attrs", json=patch)).status_code \
        == 204
    alert = sd.alerts(state, sd.utc_stamp())[0]["id"]
    assert (await client.delete(f"/ngsi-ld/v1/entities/{alert}")).status_code == 204
    after = (await client.get("/ops/view")).json()
    assert after["version"] > before["version"]
    sensors = after["layers"]["sensors"]
    assert sensors["state"][sensors["id"].index(did)] == "faulty"
    assert alert not in after["layers"]["alerts"]["id"]


async def test_the_page_and_every_asset_it_names_are_served_from_the_hub(
        client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs
    assert all(ref.startswith("/static/") for ref in refs), refs  # nothing from the internet
    for ref in refs:
        assert (await client.get(ref)).status_code == 200, ref


async def test_a_bad_tenant_on_the_stream_is_a_problem_not_a_crash(
        client: httpx.AsyncClient) -> None:
    answer = await client.get("/ops/events", params={"tenant": "no such/tenant"})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_every_text_of_the_page_exists_in_english_and_chinese() -> None:
    html = (WEB / "templates" / "index.html").read_text()
    script = (WEB / "static" / "i18n.js").read_text()
    used = set(re.findall(r'data-i18n="([^"]+)"', html))
    used |= set(re.findall(r't\("([a-z][\w.]*)"\)', (WEB / "static" / "ops.js").read_text()))
    english = script[script.index("en: {"):script.index("zh: {")]
    chinese = script[script.index("zh: {"):]
    for key in used:
        assert f'"{key}":' in english, key
        assert f'"{key}":' in chinese, key


async def test_the_summary_of_an_unknown_or_invalid_tenant_is_a_problem(
        client: httpx.AsyncClient) -> None:
    for tenant, status in (("nobody", 404), ("no such/tenant", 400)):
        answer = await client.get("/ops/summary", headers={"NGSILD-Tenant": tenant})
        assert answer.status_code == status
        assert answer.headers["content-type"].startswith("application/problem+json")
