"""GET /entities and POST /entityOperations/query: filters, paging, formats, tenants."""

from __future__ import annotations

import httpx
import pytest

URL = "/ngsi-ld/v1/entities"


def sensor(n: int, kind: str = "AirQualityObserved", **attrs: object) -> dict[str, object]:
    lon, lat = 116.30 + n * 0.01, 39.90
    return {"id": f"urn:ngsi-ld:{kind}:{n}", "type": kind,
            "location": {"type": "Point", "coordinates": [lon, lat]}, **attrs}


@pytest.fixture
async def district(client: httpx.AsyncClient) -> httpx.AsyncClient:
    entities = [
        sensor(1, pm25=12, name="north", observed={"type": "Property", "value": 1,
                                                   "observedAt": "2026-03-01T08:00:00Z"}),
        sensor(2, pm25=55, name="centre", address={"type": "Property",
                                                   "value": {"city": "Beijing", "zip": 100000}}),
        sensor(3, pm25=150, name="south"),
        sensor(4, "TrafficFlowObserved", intensity=900, name="ring road"),
    ]
    response = await client.post("/ngsi-ld/v1/entityOperations/create", json=entities)
    assert response.status_code == 201, response.text
    return client


async def ids(client: httpx.AsyncClient, **params: object) -> list[str]:
    response = await client.get(URL, params=params)
    assert response.status_code == 200, response.text
    return [e["id"].rsplit(":", 1)[1] for e in response.json()]


async def test_filters(district: httpx.AsyncClient) -> None:
    assert await ids(district, type="AirQualityObserved") == ["1", "2", "3"]
    assert await ids(district, type="AirQualityObserved,TrafficFlowObserved") == ["1", "2", "3",
                                                                                  "4"]
    assert await ids(district, q="pm25>50") == ["2", "3"]
    assert await ids(district, q="pm25==10..60") == ["1", "2"]
    assert await ids(district, q='name=="north","south"') == ["1", "3"]
    assert await ids(district, q="pm25>100|intensity>500") == ["3", "4"]
    assert await ids(district, q='name~="(?i)NOR"') == ["1"]
    assert await ids(district, q="address[city]==\"Beijing\"") == ["2"]
    assert await ids(district, q="observed.observedAt>2026-02-01T00:00:00Z") == ["1"]
    assert await ids(district, idPattern=".*:(1|3)$") == ["1", "3"]
    assert await ids(district, id="urn:ngsi-ld:AirQualityObserved:2") == ["2"]
    assert await ids(district, attrs="intensity") == ["4"]


async def test_geo_queries(district: httpx.AsyncClient) -> None:
    near = await ids(district, georel="near;maxDistance==1500", geometry="Point",
                     coordinates="[116.31, 39.90]")
    assert near == ["1", "2"]  # 0.01 deg of longitude at 39.9N is about 853 m
    within = await ids(district, georel="within", geometry="Polygon",
                       coordinates="[[[116.305,39.8],[116.335,39.8],[116.335,40],[116.305,40],"
                                   "[116.305,39.8]]]")
    assert within == ["1", "2", "3"]


async def test_paging_and_count(district: httpx.AsyncClient) -> None:
    response = await district.get(URL, params={"type": "AirQualityObserved", "limit": 2,
                                               "offset": 1, "count": "true"})
    assert response.headers["NGSILD-Results-Count"] == "3"
    assert [e["id"][-1] for e in response.json()] == ["2", "3"]
    only_count = await district.get(URL, params={"type": "AirQualityObserved", "limit": 0,
                                                 "count": "true"})
    assert only_count.json() == []
    assert only_count.headers["NGSILD-Results-Count"] == "3"
    bad = await district.get(URL, params={"type": "AirQualityObserved", "limit": 0})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {"q": "pm25>>3"},
        {"q": "(pm25==1"},
        {"type": "A;;B"},
        {"georel": "near;maxDistance==10", "geometry": "Point"},
        {"georel": "sideways", "geometry": "Point", "coordinates": "[1,2]"},
        {"idPattern": "(unclosed"},
        {"limit": "-1"},
        {"limit": "100000"},
        {"options": "nonsense"},
    ],
)
async def test_bad_query_parameters_are_400(
    district: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await district.get(URL, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_geojson_representation(district: httpx.AsyncClient) -> None:
    response = await district.get(URL, params={"type": "TrafficFlowObserved"},
                                  headers={"Accept": "application/geo+json"})
    assert response.headers["content-type"].startswith("application/geo+json")
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    [feature] = collection["features"]
    assert feature["geometry"] == {"type": "Point", "coordinates": [116.34, 39.9]}
    assert feature["properties"]["intensity"]["value"] == 900


async def test_post_query_matches_get(district: httpx.AsyncClient) -> None:
    response = await district.post("/ngsi-ld/v1/entityOperations/query", json={
        "type": "Query", "entities": [{"type": "AirQualityObserved"}], "q": "pm25<100",
        "geoQ": {"georel": "near;maxDistance==5000", "geometry": "Point",
                 "coordinates": [116.31, 39.9]},
    })
    assert response.status_code == 200, response.text
    assert [e["id"][-1] for e in response.json()] == ["1", "2"]


async def test_tenants_are_isolated(client: httpx.AsyncClient) -> None:
    headers = {"NGSILD-Tenant": "district-a"}
    r = await client.post(URL, json=sensor(1, pm25=1), headers=headers)
    assert r.status_code == 201
    assert (await client.get(f"{URL}/urn:ngsi-ld:AirQualityObserved:1")).status_code == 404
    other = await client.get(f"{URL}/urn:ngsi-ld:AirQualityObserved:1",
                             headers={"NGSILD-Tenant": "district-b"})
    assert other.status_code == 404
    assert other.json()["type"].endswith("/NonexistentTenant")
    mine = await client.get(f"{URL}/urn:ngsi-ld:AirQualityObserved:1", headers=headers)
    assert mine.status_code == 200


async def test_batch_reports_per_entity_outcome(client: httpx.AsyncClient) -> None:
    ops = "/ngsi-ld/v1/entityOperations"
    r = await client.post(f"{ops}/create", json=[sensor(1), sensor(2)])
    assert r.status_code == 201
    assert r.json() == ["urn:ngsi-ld:AirQualityObserved:1",
                                                 "urn:ngsi-ld:AirQualityObserved:2"]
    r = await client.post(f"{ops}/create", json=[sensor(2), sensor(3), {"id": "bad"}])
    assert r.status_code == 207
    result = r.json()
    assert result["success"] == ["urn:ngsi-ld:AirQualityObserved:3"]
    failed = sorted(e["entityId"] for e in result["errors"])
    assert failed == ["bad", "urn:ngsi-ld:AirQualityObserved:2"]
    r = await client.post(f"{ops}/upsert", json=[sensor(1, pm25=7)])
    assert r.status_code == 204
    r = await client.post(f"{ops}/upsert", params={"options": "update"},
                          json=[sensor(1, no2=3), sensor(9, pm25=1)])
    assert r.status_code == 201
    one = (await client.get(f"{URL}/urn:ngsi-ld:AirQualityObserved:1")).json()
    assert one["pm25"]["value"] == 7
    assert one["no2"]["value"] == 3
    r = await client.post(f"{ops}/update", json=[{"id": "urn:ngsi-ld:AirQualityObserved:404",
                                                  "pm25": 1}])
    assert r.status_code == 207
    r = await client.post(f"{ops}/merge", json=[{"id": "urn:ngsi-ld:AirQualityObserved:1",
                                                 "no2": "urn:ngsi-ld:null"}])
    assert r.status_code == 204
    r = await client.post(f"{ops}/delete", json=["urn:ngsi-ld:AirQualityObserved:1",
                                                 "urn:ngsi-ld:AirQualityObserved:404"])
    assert r.status_code == 207
    assert r.json()["success"] == ["urn:ngsi-ld:AirQualityObserved:1"]


async def test_discovery(district: httpx.AsyncClient) -> None:
    types = (await district.get("/ngsi-ld/v1/types")).json()
    assert types["typeList"] == ["AirQualityObserved", "TrafficFlowObserved"]
    info = (await district.get("/ngsi-ld/v1/types/AirQualityObserved")).json()
    assert info["entityCount"] == 3
    assert {a["attributeName"] for a in info["attributeDetails"]} >= {"pm25", "location", "name"}
    attrs = (await district.get("/ngsi-ld/v1/attributes")).json()
    assert "intensity" in attrs["attributeList"]
    detail = (await district.get("/ngsi-ld/v1/attributes/pm25")).json()
    assert detail["attributeCount"] == 3
    assert detail["typeNames"] == ["AirQualityObserved"]
    assert (await district.get("/ngsi-ld/v1/types/Nothing")).status_code == 404


async def test_type_with_other_filters_pages_and_counts(district: httpx.AsyncClient) -> None:
    # The type is then tested on the narrowed candidates: paging and count must still hold.
    params = {"type": "AirQualityObserved", "q": "pm25>10", "count": "true"}
    first = await district.get(URL, params={**params, "limit": 2})
    assert [e["id"][-1] for e in first.json()] == ["1", "2"]
    assert first.headers["NGSILD-Results-Count"] == "3"
    second = await district.get(URL, params={**params, "limit": 2, "offset": 2})
    assert [e["id"][-1] for e in second.json()] == ["3"]
    streamed = await district.get(URL, params={"type": "TrafficFlowObserved", "q": "name",
                                               "limit": 1})
    assert [e["id"][-1] for e in streamed.json()] == ["4"]


async def test_a_query_stopped_on_the_event_loop_is_answered_from_the_thread_pool(
        district: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite a query first runs on the event loop with a small budget; one that runs past
    it (every one here: the budget is below zero) is run again in the thread pool, with the
    same answer."""
    from cityhub.api import deps

    asked = [{"q": "pm25>50"}, {"type": "AirQualityObserved", "q": "pm25<100", "count": "true"},
             {"georel": "near;maxDistance==1500", "geometry": "Point",
              "coordinates": "[116.31, 39.90]"}]
    inline = [(await district.get(URL, params=p)) for p in asked]
    monkeypatch.setattr(deps, "INLINE_READ_S", -1.0)
    stopped = [(await district.get(URL, params=p)) for p in asked]
    for first, second in zip(inline, stopped, strict=True):
        assert second.status_code == first.status_code == 200
        assert second.json() == first.json()
        assert second.headers.get("NGSILD-Results-Count") == first.headers.get(
            "NGSILD-Results-Count")
    posted = await district.post("/ngsi-ld/v1/entityOperations/query",
                                 json={"type": "Query", "q": "pm25>50"})
    assert posted.status_code == 200
    assert [e["id"].rsplit(":", 1)[1] for e in posted.json()] == ["2", "3"]
