"""A retrieval passes the guard on both back-ends, read from the event loop (on PostgreSQL the
guard's catalogue and grant look-ups then run in a worker thread): the owner sees the whole
spot, a department without a grant is refused, one with a grant sees only what it grants."""

from __future__ import annotations

from tests.governance.conftest import API, Hub, add_parking
from tests.governance.test_enforcement import PURPOSE, SPOT1, grant


async def test_a_retrieval_is_minimised_on_every_back_end(store_hub: Hub) -> None:
    await add_parking(store_hub)
    url = f"{API}/entities/{SPOT1}"
    owner = await store_hub.http.get(url, headers=store_hub.token("tina"))
    assert owner.status_code == 200, owner.text
    assert {"status", "plate", "location"} <= set(owner.json())
    refused = await store_hub.http.get(url, headers=store_hub.token("eric"))
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/AccessDenied")
    assert "parking" in refused.json()["detail"]
    await grant(store_hub, store_hub.token)
    granted = await store_hub.http.get(url, headers={**store_hub.token("eric"),
                                                     "Cityhub-Purpose": PURPOSE})
    assert granted.status_code == 200, granted.text
    assert "plate" not in granted.json()
    assert granted.json()["status"]["value"] == "free"
    missing = await store_hub.http.get(f"{API}/entities/urn:ngsi-ld:ParkingSpot:nope",
                                       headers=store_hub.token("tina"))
    assert missing.status_code == 404
