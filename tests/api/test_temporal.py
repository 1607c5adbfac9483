"""The temporal API through the ASGI app: history written by the entity API, read back in the
three temporal representations, and the temporal writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.config import Settings
from cityhub.store.temporal import TemporalStore

ENTITIES = "/ngsi-ld/v1/entities"
TEMPORAL = "/ngsi-ld/v1/temporal/entities"
V1 = "urn:ngsi-ld:Vehicle:1"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
LD = {"Content-Type": "application/ld+json", "Accept": "application/ld+json"}
SPEEDS = [(f"2026-01-01T10:{m:02d}:00Z", v) for m, v in ((0, 10), (15, 20), (30, 30), (45, 60))]


def iso(text: str) -> str:
    """The stored form of an instant (UTC, microseconds)."""
    return text.replace("Z", ".000000Z")


async def drive(client: httpx.AsyncClient, entity_id: str = V1,
                speeds: list[tuple[str, Any]] = SPEEDS, kind: str = "Vehicle") -> None:
    """Create the entity with the first speed, then update it with the others."""
    first, *rest = speeds
    body = {"id": entity_id, "type": kind, "brandName": "Mercedes",
            "speed": {"type": "Property", "value": first[1], "observedAt": first[0],
                      "unitCode": "KMH"}}
    response = await client.post(ENTITIES, json=body)
    assert response.status_code == 201, response.text
    for observed, value in rest:
        response = await client.patch(f"{ENTITIES}/{entity_id}/attrs", json={
            "speed": {"type": "Property", "value": value, "observedAt": observed,
                      "unitCode": "KMH"}})
        assert response.status_code == 204, response.text


async def get(client: httpx.AsyncClient, url: str = f"{TEMPORAL}/{V1}", status: int = 200,
              **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
async def driven(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await drive(client)
    return client


# -- reading ------------------------------------------------------------------------------------


async def test_normalized_history(driven: httpx.AsyncClient) -> None:
    response = await driven.get(f"{TEMPORAL}/{V1}")
    assert response.status_code == 200
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in response.headers["link"]
    body = response.json()
    assert (body["id"], body["type"]) == (V1, "Vehicle")
    speeds = body["speed"]
    assert [(i["value"], i["observedAt"]) for i in speeds] == [(v, iso(t)) for t, v in SPEEDS]
    assert all(i["type"] == "Property" and i["unitCode"] == "KMH" for i in speeds)
    assert len({i["instanceId"] for i in speeds}) == 4
    assert body["brandName"][0]["value"] == "Mercedes"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"timerel": "before", "timeAt": "2026-01-01T10:15:00Z"}, [10]),
        ({"timerel": "after", "timeAt": "2026-01-01T10:15:00Z"}, [20, 30, 60]),
        ({"timerel": "between", "timeAt": "2026-01-01T10:10:00Z",
          "endTimeAt": "2026-01-01T10:40:00Z"}, [20, 30]),
        ({"lastN": "2"}, [30, 60]),
        ({"lastN": "2", "timerel": "before", "timeAt": "2026-01-01T10:40:00Z"}, [20, 30]),
    ],
)
async def test_time_filters(driven: httpx.AsyncClient, params: dict[str, str],
                            expected: list[int]) -> None:
    body = await get(driven, attrs="speed", **params)
    assert [i["value"] for i in body["speed"]] == expected
    assert "brandName" not in body


async def test_temporal_values(driven: httpx.AsyncClient) -> None:
    for params in ({"options": "temporalValues"}, {"format": "temporalValues"}):
        body = await get(driven, attrs="speed", **params)
        assert body["speed"] == {"type": "Property",
                                 "values": [[v, iso(t)] for t, v in SPEEDS]}


async def test_aggregated_values(driven: httpx.AsyncClient) -> None:
    body = await get(driven, attrs="speed", options="aggregatedValues",
                     aggrMethods="avg,max,totalCount", aggrPeriodDuration="PT30M",
                     timerel="between", timeAt="2026-01-01T10:00:00Z",
                     endTimeAt="2026-01-01T11:00:00Z")
    first = ("2026-01-01T10:00:00.000000Z", "2026-01-01T10:30:00.000000Z")
    second = ("2026-01-01T10:30:00.000000Z", "2026-01-01T11:00:00.000000Z")
    assert body["speed"] == {
        "type": "Property",
        "avg": [[15.0, *first], [45.0, *second]],
        "max": [[20.0, *first], [60.0, *second]],
        "totalCount": [[2, *first], [2, *second]],
    }
    whole = await get(driven, attrs="speed", format="aggregatedValues", aggrMethods="sum,min")
    assert whole["speed"] == {"type": "Property",
                              "sum": [[120.0, iso(SPEEDS[0][0]), iso(SPEEDS[-1][0])]],
                              "min": [[10.0, iso(SPEEDS[0][0]), iso(SPEEDS[-1][0])]]}


async def test_aggregation_of_text_values(client: httpx.AsyncClient) -> None:
    await drive(client, speeds=[("2026-01-01T10:00:00Z", "slow"), ("2026-01-01T10:01:00Z", "fast"),
                                ("2026-01-01T10:02:00Z", "slow")])
    body = await get(client, attrs="speed", options="aggregatedValues",
                     aggrMethods="distinctCount,min,max,avg")
    assert {m: v[0][0] for m, v in body["speed"].items() if m != "type"} == {
        "distinctCount": 2, "min": "fast", "max": "slow", "avg": None}


async def test_system_time_properties_and_sys_attrs(driven: httpx.AsyncClient) -> None:
    body = await get(driven, attrs="speed", timeproperty="modifiedAt", options="sysAttrs")
    assert "createdAt" in body
    assert "modifiedAt" in body
    assert all("modifiedAt" in i and "createdAt" in i for i in body["speed"])
    response = await driven.delete(f"{ENTITIES}/{V1}/attrs/speed")
    assert response.status_code == 204
    deleted = await get(driven, attrs="speed", timeproperty="deletedAt")
    assert [(i["value"], "deletedAt" in i) for i in deleted["speed"]] == [("urn:ngsi-ld:null",
                                                                            True)]


@pytest.mark.parametrize(
    "params",
    [
        {"timerel": "between", "timeAt": "2026-01-01T10:00:00Z"},
        {"timerel": "after"},
        {"timerel": "after", "timeAt": "not a date"},
        {"timerel": "sometime", "timeAt": "2026-01-01T10:00:00Z"},
        {"lastN": "-1"},
        {"lastN": "0"},
        {"lastN": "many"},
        {"options": "aggregatedValues", "aggrMethods": "median"},
        {"options": "aggregatedValues"},
        {"options": "aggregatedValues", "aggrMethods": "sum", "aggrPeriodDuration": "1h"},
        {"timeproperty": "updatedAt"},
        {"options": "temporalValues,aggregatedValues"},
    ],
)
async def test_bad_parameters_are_bad_request_data(driven: httpx.AsyncClient,
                                                   params: dict[str, str]) -> None:
    for url in (f"{TEMPORAL}/{V1}", TEMPORAL):
        problem = await get(driven, url, 400, **params)
        assert problem["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


async def test_unknown_entity_or_attribute_is_not_found(driven: httpx.AsyncClient) -> None:
    problem = await get(driven, f"{TEMPORAL}/urn:ngsi-ld:Vehicle:404", 404)
    assert problem["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
    await get(driven, status=404, attrs="colour")
    await get(driven, f"{TEMPORAL}/not-a-uri", 400)


async def test_query_temporal_entities(driven: httpx.AsyncClient) -> None:
    await drive(driven, "urn:ngsi-ld:Vehicle:2", [("2026-01-01T10:05:00Z", 99)])
    await drive(driven, "urn:ngsi-ld:Bike:1", [("2026-01-01T10:05:00Z", 5)], kind="Bike")
    response = await driven.get(TEMPORAL, params={
        "type": "Vehicle", "attrs": "speed", "timerel": "after",
        "timeAt": "2026-01-01T10:00:00Z", "options": "temporalValues", "count": "true"})
    assert response.status_code == 200, response.text
    assert response.headers["NGSILD-Results-Count"] == "2"
    body = response.json()
    assert [e["id"] for e in body] == [V1, "urn:ngsi-ld:Vehicle:2"]
    assert [v for v, _t in body[1]["speed"]["values"]] == [99]
    assert [e["id"] for e in await get(driven, TEMPORAL, q="speed>50")] == [
        V1, "urn:ngsi-ld:Vehicle:2"]
    paged = await get(driven, TEMPORAL, type="Vehicle", limit="1", offset="1")
    assert [e["id"] for e in paged] == ["urn:ngsi-ld:Vehicle:2"]


async def test_post_query_with_temporal_q(driven: httpx.AsyncClient) -> None:
    query = {"type": "Query", "entities": [{"type": "Vehicle"}], "attrs": ["speed"],
             "temporalQ": {"timerel": "before", "timeAt": "2026-01-01T10:40:00Z", "lastN": 1}}
    response = await driven.post("/ngsi-ld/v1/temporal/entityOperations/query", json=query)
    assert response.status_code == 200, response.text
    [vehicle] = response.json()
    assert [i["value"] for i in vehicle["speed"]] == [30]
    aggregated = await driven.post(
        "/ngsi-ld/v1/temporal/entityOperations/query", params={"format": "aggregatedValues"},
        json={**query, "temporalQ": {"aggrMethods": ["max"], "aggrPeriodDuration": "PT1H"}})
    assert aggregated.json()[0]["speed"]["max"][0][0] == 60.0
    bad = await driven.post("/ngsi-ld/v1/temporal/entityOperations/query",
                            json={**query, "temporalQ": {"timerel": "between",
                                                         "timeAt": "2026-01-01T10:00:00Z"}})
    assert bad.status_code == 400


async def test_the_request_context_names_attributes(client: httpx.AsyncClient) -> None:
    context = [{"Car": "https://example.org/Car", "rpm": "https://example.org/engine/rpm"}, CORE]
    body = {"id": "urn:ngsi-ld:Car:1", "type": "Car", "@context": context,
            "rpm": [{"type": "Property", "value": n, "observedAt": f"2026-01-01T10:0{n}:00Z"}
                    for n in (1, 2)]}
    response = await client.post(TEMPORAL, json=body, headers=LD)
    assert response.status_code == 201, response.text
    query = {"type": "Query", "entities": [{"type": "Car"}], "@context": context}
    found = await client.post("/ngsi-ld/v1/temporal/entityOperations/query", json=query,
                              headers=LD, params={"options": "temporalValues"})
    assert found.status_code == 200, found.text
    [car] = found.json()
    assert car["type"] == "Car"
    assert [v for v, _t in car["rpm"]["values"]] == [1, 2]
    assert car["@context"] == context
    plain = await get(client, f"{TEMPORAL}/urn:ngsi-ld:Car:1")
    assert plain["type"] == "https://example.org/Car"
    assert "https://example.org/engine/rpm" in plain


async def test_tenants_are_apart(driven: httpx.AsyncClient) -> None:
    response = await driven.get(f"{TEMPORAL}/{V1}", headers={"NGSILD-Tenant": "elsewhere"})
    assert response.status_code == 404
    assert response.json()["type"].endswith("/NonexistentTenant")


# -- pagination ---------------------------------------------------------------------------------


@pytest.fixture
async def small_pages(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with room for three instances per attribute in one answer."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.temporal = TemporalStore(app.state.store, instance_limit=3)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_long_histories_come_in_pages(small_pages: httpx.AsyncClient) -> None:
    await drive(small_pages)
    response = await small_pages.get(f"{TEMPORAL}/{V1}", params={"attrs": "speed"})
    assert response.status_code == 206
    assert [i["value"] for i in response.json()["speed"]] == [10, 20, 30]
    assert response.headers["Content-Range"] == (
        "date-time 2026-01-01T10:00:00.000000Z-2026-01-01T10:30:00.000000Z/*")
    last = await small_pages.get(f"{TEMPORAL}/{V1}", params={"attrs": "speed", "lastN": "4"})
    assert last.status_code == 206
    assert [i["value"] for i in last.json()["speed"]] == [20, 30, 60]
    assert last.headers["Content-Range"].endswith("/4")
    short = await small_pages.get(f"{TEMPORAL}/{V1}", params={"attrs": "speed", "lastN": "2"})
    assert short.status_code == 200
    assert "Content-Range" not in short.headers


# -- writing ------------------------------------------------------------------------------------


async def test_create_temporal_entity_then_add_instances(client: httpx.AsyncClient) -> None:
    body = {"id": "urn:ngsi-ld:Room:1", "type": "Room",
            "temperature": [{"type": "Property", "value": v, "observedAt": t}
                            for t, v in (("2026-01-01T12:00:00Z", 21), ("2026-01-01T11:00:00Z",
                                                                          19))]}
    response = await client.post(TEMPORAL, json=body)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Room:1"
    current = await get(client, f"{ENTITIES}/urn:ngsi-ld:Room:1")
    assert current["temperature"]["value"] == 21
    again = await client.post(TEMPORAL, json=body)
    assert again.status_code == 204
    more = await client.post(f"{TEMPORAL}/urn:ngsi-ld:Room:1/attrs", json={
        "temperature": {"type": "Property", "value": 23, "observedAt": "2026-01-01T13:00:00Z"}})
    assert more.status_code == 204, more.text
    history = await get(client, f"{TEMPORAL}/urn:ngsi-ld:Room:1", options="temporalValues")
    assert [v for v, _t in history["temperature"]["values"]] == [19, 21, 23]
    current = await get(client, f"{ENTITIES}/urn:ngsi-ld:Room:1")
    assert current["temperature"]["value"] == 23
    missing = await client.post(f"{TEMPORAL}/urn:ngsi-ld:Room:2/attrs", json={
        "temperature": {"type": "Property", "value": 1}})
    assert missing.status_code == 404
    untyped = await client.post(TEMPORAL, json={"id": "urn:ngsi-ld:Room:3", "temperature": 1})
    assert untyped.status_code == 400


async def test_modify_and_delete_instances(driven: httpx.AsyncClient) -> None:
    speeds = (await get(driven, attrs="speed"))["speed"]
    second, first = speeds[1]["instanceId"], speeds[0]["instanceId"]
    url = f"{TEMPORAL}/{V1}/attrs/speed"
    response = await driven.patch(f"{url}/{second}", json={"type": "Property", "value": 25})
    assert response.status_code == 204, response.text
    response = await driven.delete(f"{url}/{first}")
    assert response.status_code == 204
    after = (await get(driven, attrs="speed"))["speed"]
    assert [(i["value"], i["observedAt"]) for i in after[:2]] == [
        (25, iso(SPEEDS[1][0])), (30, iso(SPEEDS[2][0]))]
    assert (await driven.delete(f"{url}/{first}")).status_code == 404
    assert (await driven.delete(f"{url}/not-an-instance")).status_code == 400


async def test_delete_attribute_and_entity_history(driven: httpx.AsyncClient) -> None:
    response = await driven.delete(f"{TEMPORAL}/{V1}/attrs/speed")
    assert response.status_code == 204
    body = await get(driven)
    assert "speed" not in body
    assert "brandName" in body
    assert "speed" not in await get(driven, f"{ENTITIES}/{V1}")
    assert (await driven.delete(f"{TEMPORAL}/{V1}/attrs/speed")).status_code == 404
    assert (await driven.delete(f"{TEMPORAL}/{V1}")).status_code == 204
    await get(driven, status=404)
    await get(driven, f"{ENTITIES}/{V1}", 404)
    assert (await driven.delete(f"{TEMPORAL}/{V1}")).status_code == 404


async def test_a_history_read_stopped_on_the_event_loop_is_answered_from_the_thread_pool(
        driven: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite the history reads run on the event loop with a small budget first; one that
    runs past it (every one here: the budget is below zero) is run again in the thread pool,
    with the same answer, errors included."""
    from cityhub.api import deps

    await drive(driven, "urn:ngsi-ld:Vehicle:2", [("2026-01-01T10:05:00Z", 99)])
    asked: list[tuple[str, str, dict[str, str], Any]] = [
        ("GET", f"{TEMPORAL}/{V1}", {"lastN": "2"}, None),
        ("GET", f"{TEMPORAL}/{V1}", {"aggrMethods": "max,avg", "aggrPeriodDuration": "PT1H",
                                     "format": "aggregatedValues"}, None),
        ("GET", f"{TEMPORAL}/{V1}", {"attrs": "colour"}, None),
        ("GET", TEMPORAL, {"type": "Vehicle", "q": "speed>50", "count": "true"}, None),
        ("POST", "/ngsi-ld/v1/temporal/entityOperations/query", {},
         {"type": "Query", "entities": [{"type": "Vehicle"}], "temporalQ": {"lastN": 1}}),
    ]

    async def answers() -> list[tuple[int, Any, str | None]]:
        out = []
        for method, url, params, body in asked:
            response = await driven.request(method, url, params=params, json=body)
            out.append((response.status_code, response.json(),
                        response.headers.get("NGSILD-Results-Count")))
        return out

    on_the_loop = await answers()
    assert [status for status, _, _ in on_the_loop] == [200, 200, 404, 200, 200]
    monkeypatch.setattr(deps, "INLINE_READ_S", -1.0)
    assert await answers() == on_the_loop

