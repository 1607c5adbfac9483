"""The entity API through the ASGI app: what a FIWARE client relies on."""

from __future__ import annotations

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.config import Settings

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
LD = {"Content-Type": "application/ld+json"}


def vehicle(n: int = 1, speed: float = 50.0, **extra: object) -> dict[str, object]:
    return {
        "id": f"urn:ngsi-ld:Vehicle:{n}",
        "type": "Vehicle",
        "speed": {"type": "Property", "value": speed, "unitCode": "KMH",
                  "observedAt": "2026-01-01T10:00:00Z"},
        "brandName": {"type": "Property", "value": "Mercedes"},
        "isParked": {"type": "Relationship", "object": "urn:ngsi-ld:OffStreetParking:Downtown1"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [-8.5, 41.2]}},
        **extra,
    }


async def create(client: httpx.AsyncClient, body: dict[str, object], **headers: str) -> None:
    response = await client.post("/ngsi-ld/v1/entities", json=body, headers=headers)
    assert response.status_code == 201, response.text


async def test_create_then_retrieve_round_trips_normalized(client: httpx.AsyncClient) -> None:
    await create(client, vehicle())
    response = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:1")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "urn:ngsi-ld:Vehicle:1"
    assert body["type"] == "Vehicle"
    assert body["speed"] == {"type": "Property", "value": 50.0, "unitCode": "KMH",
                             "observedAt": "2026-01-01T10:00:00.000000Z"}
    assert body["isParked"]["object"] == "urn:ngsi-ld:OffStreetParking:Downtown1"
    assert "rel=\"http://www.w3.org/ns/json-ld#context\"" in response.headers["link"]


async def test_create_answers_201_with_location(client: httpx.AsyncClient) -> None:
    response = await client.post("/ngsi-ld/v1/entities", json=vehicle())
    assert response.status_code == 201
    assert response.headers["location"] == "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:1"


async def test_create_twice_is_already_exists_problem(client: httpx.AsyncClient) -> None:
    await create(client, vehicle())
    response = await client.post("/ngsi-ld/v1/entities", json=vehicle())
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"type": "Vehicle"}, "id"),
        ({"id": "not a uri", "type": "Vehicle"}, "URI"),
        ({"id": "urn:ngsi-ld:V:1"}, "type"),
        ({"id": "urn:ngsi-ld:V:1", "type": "V", "speed": {"type": "Property"}}, "value"),
        ({"id": "urn:ngsi-ld:V:1", "type": "V", "rel": {"type": "Relationship", "object": 5}},
         "URI"),
        ({"id": "urn:ngsi-ld:V:1", "type": "V", "bad name": 1}, "attribute name"),
        ({"id": "urn:ngsi-ld:V:1", "type": "V",
          "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [500, 1]}}},
         "location"),
        ({"id": "urn:ngsi-ld:V:1", "type": "V",
          "speed": {"type": "Property", "value": 1, "observedAt": "yesterday"}}, "observedAt"),
    ],
)
async def test_malformed_entities_are_bad_request_data(
    client: httpx.AsyncClient, body: dict[str, object], fragment: str
) -> None:
    response = await client.post("/ngsi-ld/v1/entities", json=body)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert fragment.lower() in problem["detail"].lower()


async def test_invalid_json_is_invalid_request(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/ngsi-ld/v1/entities", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("/InvalidRequest")


async def test_unknown_entity_is_resource_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:404")
    assert response.status_code == 404
    assert response.json()["type"].endswith("/ResourceNotFound")


async def test_key_values_and_concise_forms(client: httpx.AsyncClient) -> None:
    await create(client, vehicle())
    kv = (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:1",
                           params={"options": "keyValues"})).json()
    assert kv["speed"] == 50.0
    assert kv["isParked"] == "urn:ngsi-ld:OffStreetParking:Downtown1"
    assert kv["location"] == {"type": "Point", "coordinates": [-8.5, 41.2]}
    concise = (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:1",
                                params={"format": "concise"})).json()
    assert concise["brandName"] == "Mercedes"
    assert concise["speed"]["value"] == 50.0
    assert "type" not in concise["speed"]
    assert concise["isParked"] == {"object": "urn:ngsi-ld:OffStreetParking:Downtown1"}


async def test_concise_input_is_accepted(client: httpx.AsyncClient) -> None:
    await create(client, {"id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": 21.5,
                          "location": {"type": "Point", "coordinates": [2.0, 41.0]},
                          "owner": {"object": "urn:ngsi-ld:Person:1"}})
    body = (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Room:1")).json()
    assert body["temperature"] == {"type": "Property", "value": 21.5}
    assert body["location"]["type"] == "GeoProperty"
    assert body["owner"]["type"] == "Relationship"


async def test_user_context_expands_and_compacts_per_request(client: httpx.AsyncClient) -> None:
    context = {"@context": [{"Car": "https://example.org/Car",
                             "rpm": "https://example.org/engine/rpm"}, CORE]}
    body = {"id": "urn:ngsi-ld:Car:1", "type": "Car", "rpm": 900, **context}
    response = await client.post("/ngsi-ld/v1/entities", json=body, headers=LD)
    assert response.status_code == 201, response.text
    # Without that context, the terms come back as full IRIs.
    plain = (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Car:1")).json()
    assert plain["type"] == "https://example.org/Car"
    assert "https://example.org/engine/rpm" in plain
    # With it (inline, by asking for ld+json on a POST query), they are terms again.
    query = {"type": "Query", "entities": [{"type": "Car"}], **context}
    found = await client.post("/ngsi-ld/v1/entityOperations/query", json=query,
                              headers={**LD, "Accept": "application/ld+json"})
    assert found.status_code == 200, found.text
    [car] = found.json()
    assert car["type"] == "Car"
    assert car["rpm"]["value"] == 900
    assert car["@context"] == context["@context"]


async def test_ld_json_without_context_is_rejected(client: httpx.AsyncClient) -> None:
    response = await client.post("/ngsi-ld/v1/entities", json=vehicle(), headers=LD)
    assert response.status_code == 400


async def test_append_update_partial_and_delete_attributes(client: httpx.AsyncClient) -> None:
    await create(client, vehicle())
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:1"
    r = await client.post(f"{url}/attrs", json={"color": {"type": "Property", "value": "red"}})
    assert r.status_code == 204
    r = await client.post(f"{url}/attrs", params={"options": "noOverwrite"},
                          json={"color": {"type": "Property", "value": "blue"}})
    assert r.status_code == 207
    assert r.json()["notUpdated"][0]["attributeName"] == "color"
    r = await client.patch(f"{url}/attrs", json={"color": {"type": "Property", "value": "green"},
                                                 "ghost": {"type": "Property", "value": 1}})
    assert r.status_code == 207
    assert r.json()["updated"] == ["color"]
    r = await client.patch(f"{url}/attrs/speed", json={"value": 80})
    assert r.status_code == 204
    body = (await client.get(url)).json()
    assert body["color"]["value"] == "green"
    assert body["speed"]["value"] == 80
    assert body["speed"]["unitCode"] == "KMH"
    r = await client.delete(f"{url}/attrs/color")
    assert r.status_code == 204
    assert "color" not in (await client.get(url)).json()
    r = await client.delete(f"{url}/attrs/color")
    assert r.status_code == 404


async def test_replace_and_merge_patch(client: httpx.AsyncClient) -> None:
    await create(client, vehicle())
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:1"
    r = await client.patch(url, json={"speed": 10, "brandName": "urn:ngsi-ld:null",
                                      "color": "white"})
    assert r.status_code == 204, r.text
    body = (await client.get(url)).json()
    assert body["speed"]["value"] == 10
    assert body["speed"]["unitCode"] == "KMH"
    assert "brandName" not in body
    assert body["color"]["value"] == "white"
    r = await client.put(url, json={"type": "Vehicle", "speed": 1})
    assert r.status_code == 204, r.text
    body = (await client.get(url)).json()
    assert set(body) == {"id", "type", "speed"}


async def test_delete_entity(client: httpx.AsyncClient) -> None:
    await create(client, vehicle())
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:1"
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.delete(url)).status_code == 404


async def test_multi_instance_attributes_by_dataset_id(client: httpx.AsyncClient) -> None:
    await create(client, {"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "temp": [
        {"type": "Property", "value": 20},
        {"type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:Dataset:b"},
    ]})
    body = (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:1")).json()
    assert sorted(i["value"] for i in body["temp"]) == [20, 21]
    r = await client.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:1/attrs/temp",
                            params={"datasetId": "urn:ngsi-ld:Dataset:b"})
    assert r.status_code == 204
    body = (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:1")).json()
    assert body["temp"]["value"] == 20


async def test_sys_attrs_and_pick_omit(client: httpx.AsyncClient) -> None:
    await create(client, vehicle())
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:1"
    body = (await client.get(url, params={"options": "sysAttrs"})).json()
    assert body["createdAt"].endswith("Z")
    assert body["speed"]["modifiedAt"].endswith("Z")
    picked = (await client.get(url, params={"pick": "id,speed"})).json()
    assert set(picked) == {"id", "speed"}
    omitted = (await client.get(url, params={"omit": "type,location"})).json()
    assert "type" not in omitted
    assert "location" not in omitted
    assert "speed" in omitted


async def test_requests_without_accept_header_get_json(client: httpx.AsyncClient) -> None:
    await create(client, vehicle())
    request = client.build_request("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:1")
    del request.headers["accept"]
    response = await client.send(request)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"


async def test_a_crash_on_a_hot_route_is_a_problem_without_details(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retrieve and partial update are answered in front of FastAPI (api/fastpath.py): an
    unexpected error there must look as it does on every other route."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            await create(http, vehicle())

            async def broken(*_args: object) -> None:
                raise RuntimeError("disk on fire")

            monkeypatch.setattr(app.state.store, "get_async", broken)
            response = await http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:1")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/InternalError"
    assert "disk on fire" not in response.text

