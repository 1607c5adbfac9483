"""The device registry and HTTP ingestion through the hub's API (SQLite store)."""

from __future__ import annotations

import httpx
import orjson

TEMPORAL = "/ngsi-ld/v1/temporal/entities/"
AQ = "urn:ngsi-ld:AirQualityObserved:ecology:aq-1"


async def register(client: httpx.AsyncClient, device: str = "aq-1",
                   kind: str = "AirQualityObserved", **extra: object) -> str:
    response = await client.post("/devices/v1/devices", json={
        "id": device, "type": kind, "owner": "ecology", "location": [116.39, 39.9], **extra})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def test_register_list_and_device_entity(client: httpx.AsyncClient) -> None:
    token = await register(client)
    assert len(token) >= 24
    listed = (await client.get("/devices/v1/devices")).json()
    assert [d["id"] for d in listed] == ["aq-1"]
    assert "token" not in listed[0]
    assert "credential" not in listed[0]
    assert listed[0]["topic"] == "cityhub/_/aq-1/up"
    entity = (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Device:ecology:aq-1")).json()
    assert entity["type"] == "Device"
    assert entity["deviceState"]["value"] == "ok"
    assert entity["owner"]["value"] == "ecology"
    again = await client.post("/devices/v1/devices", json={
        "id": "aq-1", "type": "AirQualityObserved", "owner": "x", "location": [0, 0]})
    assert again.status_code == 409


async def test_bad_registrations_are_problems(client: httpx.AsyncClient) -> None:
    for body in ({"id": "a b", "type": "AirQualityObserved", "owner": "o", "location": [0, 0]},
                 {"id": "a", "type": "Unicorn", "owner": "o", "location": [0, 0]},
                 {"id": "a", "type": "ParkingSpot", "owner": "o", "location": [200, 0]},
                 {"id": "a", "type": "ParkingSpot", "owner": "o", "location": [0, 0],
                  "decoder": "nope"}):
        response = await client.post("/devices/v1/devices", json=body)
        assert response.status_code in (400, 422), body
        assert response.headers["content-type"] == "application/problem+json"


async def test_http_measurement_lands_with_unit_and_observed_at(
        client: httpx.AsyncClient) -> None:
    token = await register(client)
    body = {"id": "m1", "observedAt": "2026-05-01T08:00:00Z", "values": {"pm25": 12.5}}
    headers = {"Authorization": f"Bearer {token}"}
    url = "/ingest/v1/devices/aq-1/measurements"
    first = await client.post(url, content=orjson.dumps(body), headers=headers)
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == 1
    again = await client.post(url, content=orjson.dumps(body), headers=headers)
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": 0}
    entity = (await client.get(f"/ngsi-ld/v1/entities/{AQ}")).json()
    assert entity["pm25"]["value"] == 12.5
    assert entity["pm25"]["unitCode"] == "GQ"
    assert entity["pm25"]["observedAt"].startswith("2026-05-01T08:00:00")
    history = (await client.get(TEMPORAL + AQ, params={"attrs": "pm25"})).json()
    pm25 = history["pm25"]
    assert len(pm25 if isinstance(pm25, list) else [pm25]) == 1
    device = (await client.get("/devices/v1/devices/aq-1")).json()
    assert device["lastSeen"] is not None


async def test_refused_messages_are_dead_lettered(client: httpx.AsyncClient) -> None:
    token = await register(client)
    url = "/ingest/v1/devices/aq-1/measurements"
    good = {"Authorization": f"Bearer {token}"}
    cases = [
        (b"{not json", good, 400),
        (orjson.dumps({"values": {"pm25": -3}}), good, 400),
        (orjson.dumps({"values": {"colour": 3}}), good, 400),
        (orjson.dumps({"values": {"pm25": 3}}), {"Authorization": "Bearer wrong"}, 401),
    ]
    for raw, headers, status in cases:
        response = await client.post(url, content=raw, headers=headers)
        assert response.status_code == status, (raw, response.text)
    await client.post("/devices/v1/devices/aq-1/revoke")
    revoked = await client.post(url, content=orjson.dumps({"values": {"pm25": 3}}), headers=good)
    assert revoked.status_code == 401
    letters = (await client.get("/ingest/v1/dead-letters")).json()
    assert letters["total"] == 5
    reasons = [item["reason"] for item in letters["items"]]
    assert reasons[0] == "device is revoked"
    assert any("not JSON" in r for r in reasons)
    assert any("credential" in r for r in reasons)
    device = (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Device:ecology:aq-1")).json()
    assert device["deviceState"]["value"] == "revoked"
    assert (await client.get(f"/ngsi-ld/v1/entities/{AQ}")).status_code == 404


async def test_edge_batch_is_idempotent_and_keeps_every_instance(
        client: httpx.AsyncClient) -> None:
    await register(client)
    measurements = [{"tenant": "", "device": "aq-1", "id": f"m{i}",
                     "observedAt": f"2026-05-01T08:00:{i:02d}Z", "values": {"pm25": 10.0 + i % 3}}
                    for i in range(30)]
    alert = {"device": "aq-1", "rule": "pm25-high", "kind": "threshold", "severity": "high",
             "description": "pm25=80 above 75", "at": "2026-05-01T08:00:10.000000Z"}
    body = {"measurements": measurements, "alerts": [alert],
            "deadLetters": [{"device": "x", "reason": "bad topic", "payload": "?"}]}
    for _ in range(2):  # a retried batch
        response = await client.post("/ingest/v1/batch", content=orjson.dumps(body))
        assert response.status_code == 200, response.text
    assert response.json()["duplicates"] == 30
    history = (await client.get(TEMPORAL + AQ, params={"attrs": "pm25", "lastN": 100})).json()
    assert len(history["pm25"]) == 30
    alerts = (await client.get("/ngsi-ld/v1/entities", params={"type": "Alert"})).json()
    assert len(alerts) == 1
    assert alerts[0]["severity"]["value"] == "high"
    letters = (await client.get("/ingest/v1/dead-letters")).json()
    assert letters["total"] == 2  # the edge's dead letter, once per try


async def test_a_batch_posted_again_under_its_id_is_skipped_whole(
        client: httpx.AsyncClient) -> None:
    """The edge names each batch (Cityhub-Batch): a retry after a lost answer adds nothing,
    dead letters included, and is answered with its measurements as duplicates."""
    await register(client)
    body = {"measurements": [{"tenant": "", "device": "aq-1", "id": f"m{i}",
                              "observedAt": f"2026-05-01T08:00:{i:02d}Z",
                              "values": {"pm25": 1.0}} for i in range(4)],
            "deadLetters": [{"device": "x", "reason": "bad topic", "payload": "?"}]}
    headers = {"Cityhub-Batch": "edge-1:0a1b2c:1-5"}
    answers = [(await client.post("/ingest/v1/batch", content=orjson.dumps(body),
                                  headers=headers)).json() for _ in range(2)]
    assert answers == [{"accepted": 4, "duplicates": 0, "rejected": 0},
                       {"accepted": 0, "duplicates": 4, "rejected": 0}]
    assert (await client.get("/ingest/v1/dead-letters")).json()["total"] == 1
    other = await client.post("/ingest/v1/batch", content=orjson.dumps(body),
                              headers={"Cityhub-Batch": "edge-1:0a1b2c:6-10"})
    assert other.json()["duplicates"] == 4  # another batch: its letters count, its ids held
    assert (await client.get("/ingest/v1/dead-letters")).json()["total"] == 2


async def test_a_batch_over_devices_partly_held_adds_only_the_new_messages(
        client: httpx.AsyncClient) -> None:
    """One transaction per batch: ids already held (of any device) are dropped, the rest lands,
    and every device of the batch gets its last-seen state."""
    await register(client, "aq-1")
    await register(client, "aq-2")

    def item(device: str, i: int) -> dict[str, object]:
        return {"tenant": "", "device": device, "id": f"{device}-m{i}",
                "observedAt": f"2026-05-01T08:00:{i:02d}Z", "values": {"pm25": float(i)}}

    first = {"measurements": [item("aq-1", i) for i in range(10)]}
    response = await client.post("/ingest/v1/batch", content=orjson.dumps(first))
    assert response.json() == {"accepted": 10, "duplicates": 0, "rejected": 0}
    mixed = {"measurements": [*(item("aq-1", i) for i in range(5, 15)),
                              *(item("aq-2", i) for i in range(4)), item("aq-2", 0)]}
    response = await client.post("/ingest/v1/batch", content=orjson.dumps(mixed))
    assert response.json() == {"accepted": 9, "duplicates": 6, "rejected": 0}
    for device, count, last in (("aq-1", 15, 14.0), ("aq-2", 4, 3.0)):
        entity_id = f"urn:ngsi-ld:AirQualityObserved:ecology:{device}"
        history = (await client.get(TEMPORAL + entity_id,
                                    params={"attrs": "pm25", "lastN": 100})).json()
        assert [i["value"] for i in history["pm25"]] == [float(i) for i in range(count)]
        assert (await client.get(f"/ngsi-ld/v1/entities/{entity_id}")).json()[
            "pm25"]["value"] == last
        state = (await client.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:Device:ecology:{device}"
                                  )).json()
        assert state["dateLastValueReported"]["value"] is not None
        assert state["deviceState"]["value"] == "ok"


async def test_unverified_messages_are_checked_by_the_hub(client: httpx.AsyncClient) -> None:
    """An edge forwards messages of devices it did not know yet; the hub checks them against
    its registry as it checks a device's own post."""
    import base64

    token = await register(client)

    def raw(payload: dict[str, object]) -> str:
        return base64.b64encode(orjson.dumps(payload)).decode()

    body = {"unverified": [
        {"device": "aq-1", "payload": raw({"id": "u1", "key": token, "values": {"pm25": 7.0}})},
        {"device": "aq-1", "payload": raw({"id": "u2", "key": "wrong", "values": {"pm25": 8}})},
        {"device": "ghost", "payload": raw({"values": {"pm25": 1}})},
        {"device": "aq-1", "payload": "not base64!"}]}
    response = await client.post("/ingest/v1/batch", content=orjson.dumps(body))
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": 2}
    entity = (await client.get(f"/ngsi-ld/v1/entities/{AQ}")).json()
    assert entity["pm25"]["value"] == 7.0
    reasons = sorted(i["reason"] for i in (await client.get("/ingest/v1/dead-letters")).json()[
        "items"])
    assert reasons[0] == "bad or missing device credential"
    assert reasons[1].startswith("malformed batch item")
    assert reasons[2] == "unknown device"
