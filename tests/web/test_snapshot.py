"""The in-memory district: loaded once, then kept by the store's changes, even those that land
while it is still loading."""

from __future__ import annotations

from typing import Any

from cityhub.api.app import create_app
from cityhub.config import Settings
from cityhub.ngsild.model import DEFAULT_VOCAB, NGSI_LD
from cityhub.store.service import EntityService
from cityhub.web.snapshot import DistrictSnapshot


def device(n: int, state: str) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Device:t:{n}", "type": [DEFAULT_VOCAB + "Device"], "attrs": {
        DEFAULT_VOCAB + "deviceState": [{"type": "Property", "value": state}],
        NGSI_LD + "location": [{"type": "GeoProperty",
                                "value": {"type": "Point", "coordinates": [121.0 + n, 31.0]}}]}}


class _SlowStore:
    """The store, but a write to device 1 lands between the loader's read and its use."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.done = False

    def query(self, tenant: str, query: Any) -> Any:
        result = self.store.query(tenant, query)
        if not self.done and result.entities and "Device" in result.entities[0]["type"][0]:
            self.done = True
            EntityService(self.store).replace(tenant, device(1, "faulty"))
            EntityService(self.store).delete(tenant, device(2, "ok")["id"])
        return result

    def get(self, tenant: str, entity_id: str) -> Any:
        return self.store.get(tenant, entity_id)


async def test_changes_during_the_first_load_win_over_what_the_load_read(
        settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        store = app.state.store
        for n in range(3):
            EntityService(store).create("", device(n, "ok"))
        snapshot = DistrictSnapshot(_SlowStore(store),  # type: ignore[arg-type]
                                    app.state.contexts_resolver.term_map(None))
        store.listeners.append(snapshot.listener())
        _, rows, _ = snapshot.copy("")
        sensors = rows["sensors"]
        assert sensors["urn:ngsi-ld:Device:t:1"][2] == "faulty"  # not the "ok" the load read
        assert "urn:ngsi-ld:Device:t:2" not in sensors  # deleted meanwhile
        assert sensors["urn:ngsi-ld:Device:t:0"] == (121.0, 31.0, "ok")
        EntityService(store).replace("", device(0, "silent"))
        assert snapshot.rows_of("", "sensors", ["urn:ngsi-ld:Device:t:0"]) == {
            "urn:ngsi-ld:Device:t:0": (121.0, 31.0, "silent")}
