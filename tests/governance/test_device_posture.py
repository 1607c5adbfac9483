"""Device posture from the device registry decides: a revoked, faulty or stale device cannot
write, at once; a request speaking for a revoked device (Cityhub-Device) is refused; the
decision in the ledger names the rule and the posture (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cityhub.devices import tables

from .conftest import API, Hub, add_parking, spot


async def _register(hub: Hub, device_id: str) -> None:
    registered = await hub.http.post("/devices/v1/devices", headers=hub.token("tina"), json={
        "id": device_id, "type": "ParkingSpot", "owner": "transport",
        "location": [116.4, 39.9]})
    assert registered.status_code == 201, registered.text


async def _write(hub: Hub, headers: dict[str, str], n: int) -> int:
    response = await hub.http.post(f"{API}/entityOperations/upsert", headers=headers,
                                   json=[spot(n)])
    return response.status_code


def _decisions(hub: Hub, rule: str) -> list[dict[str, object]]:
    return [e.detail for e in hub.audit.events
            if e.action == "policy.decide" and e.rule == rule and e.decision == "deny"]


async def test_a_revoked_device_cannot_write_at_once(store_hub: Hub) -> None:
    await add_parking(store_hub)
    await _register(store_hub, "sensor-1")
    device = store_hub.token("sensor-1")
    assert await _write(store_hub, device, 10) == 201

    revoked = await store_hub.http.post("/devices/v1/devices/sensor-1/revoke",
                                        headers=store_hub.token("tina"))
    assert revoked.status_code == 200
    response = await store_hub.http.post(f"{API}/entityOperations/upsert", headers=device,
                                         json=[spot(11)])
    assert response.status_code == 207, response.text  # per entity in a batch
    error = response.json()["errors"][0]["error"]
    assert "rule revoked-device" in error["detail"]
    assert {"action": "write", "tier": "sensitive", "source": "127.0.0.1",
            "posture": "sensor-1:revoked"}.items() <= _decisions(store_hub,
                                                                 "revoked-device")[0].items()

    reinstated = await store_hub.http.post("/devices/v1/devices/sensor-1/reinstate",
                                           headers=store_hub.token("tina"))
    assert reinstated.status_code == 200
    assert await _write(store_hub, device, 12) == 201


async def test_a_stale_or_faulty_device_cannot_write(store_hub: Hub) -> None:
    await add_parking(store_hub)
    await _register(store_hub, "sensor-1")
    device = store_hub.token("sensor-1")
    db = store_hub.app.state.store.db
    long_ago = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    with db.transaction(write=True) as conn:
        tables.set_device(conn, "", "sensor-1", last_seen=long_ago)
    assert await _write(store_hub, device, 20) == 207
    assert _decisions(store_hub, "unhealthy-device-cannot-write")[0]["posture"] == \
        "sensor-1:ok:stale"

    recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    with db.transaction(write=True) as conn:
        tables.set_device(conn, "", "sensor-1", last_seen=recent)
    assert await _write(store_hub, device, 21) == 201

    with db.transaction(write=True) as conn:
        tables.set_device(conn, "", "sensor-1", state="faulty")
    assert await _write(store_hub, device, 22) == 207
    # reading is not writing: the faulty device's posture does not stop a staff read
    read = await store_hub.http.get(f"{API}/entities?type=ParkingSpot",
                                    headers=store_hub.token("tina"))
    assert read.status_code == 200


async def test_a_request_speaking_for_a_revoked_device_is_refused(hub: Hub) -> None:
    await add_parking(hub)
    await _register(hub, "gate-7")
    tina = hub.token("tina")
    speaking = {**tina, "Cityhub-Device": "gate-7"}
    assert await _write(hub, speaking, 30) == 201
    assert (await hub.http.post("/devices/v1/devices/gate-7/revoke",
                                headers=tina)).status_code == 200
    assert await _write(hub, speaking, 31) == 207
    read = await hub.http.get(f"{API}/entities/urn:ngsi-ld:ParkingSpot:transport:1",
                              headers=speaking)
    assert read.status_code == 403
    assert "revoked-device" in read.json()["detail"]
    assert await _write(hub, tina, 32) == 201  # the same staff member, for no device


async def test_an_unregistered_device_keeps_its_department_rights(hub: Hub) -> None:
    """Posture only restricts: a device account not in the registry writes as before (its
    posture is 'unregistered'), so the shipped policies need no registry to work."""
    await add_parking(hub)
    assert await _write(hub, hub.token("sensor-1"), 40) == 201
    allowed = [e for e in hub.audit.events if e.action == "policy.decide"
               and e.actor.endswith("#sensor-1") and e.decision == "allow"]
    assert allowed[-1].detail["posture"] == "sensor-1:unregistered"
