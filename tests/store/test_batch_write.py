"""A large batch is written with multi-row statements (store.sql.insert_rows): every entity of
it, whatever statement carried it, is stored, queryable by q and geo-query, and has its
history, on every back-end."""

from __future__ import annotations

from cityhub.ngsild import temporal as tl
from cityhub.ngsild.geoquery import parse_geoquery
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from cityhub.store.temporal import TemporalStore
from tests.store.helpers import entity, iri, query

# Past every statement size (512, 64, 8 rows) and a remainder: 599 = 512 + 64 + 2 * 8 + 7.
COUNT = 599


def reading(n: int, value: float) -> dict[str, object]:
    return {
        "id": f"urn:ngsi-ld:Sensor:{n:04d}",
        "type": "Sensor",
        "level": {"type": "Property", "value": value, "observedAt": "2026-01-01T10:00:00Z"},
        "ref": {"type": "Relationship", "object": f"urn:ngsi-ld:Road:{n % 7}"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [n * 0.01, 0.0]}},
    }


def test_every_entity_of_a_large_batch_is_stored_indexed_and_in_history(
    service: EntityService, store: SqlStore
) -> None:
    outcome = service.batch("", "upsert", [entity(reading(n, float(n))) for n in range(COUNT)])
    assert not outcome.errors
    assert len(outcome.created) == COUNT

    found = store.query("", query(q="level>=590", limit=100)).entities
    assert [e["id"] for e in found] == [f"urn:ngsi-ld:Sensor:{n:04d}" for n in range(590, 599)]
    assert store.query("", query(q='ref=="urn:ngsi-ld:Road:3"', limit=1000,
                                 count=True)).count == len(range(3, COUNT, 7))
    # each point lies 0.01 degrees (about 1.1 km) from the next along the equator
    near = parse_geoquery("near;maxDistance==600", "Point", "[5.98,0.0]")
    assert [e["id"] for e in store.query("", query(geo=near)).entities] == [
        "urn:ngsi-ld:Sensor:0598"]

    temporal = TemporalStore(store)
    last = store.get("", f"urn:ngsi-ld:Sensor:{COUNT - 1:04d}")
    assert last is not None
    series = temporal.read("", last, tl.TemporalQuery(), [iri("level")])[iri("level")]
    assert [row.instance["value"] for row in series.items] == [float(COUNT - 1)]


def test_a_large_batch_of_updates_records_each_changed_value(
    service: EntityService, store: SqlStore
) -> None:
    service.batch("", "upsert", [entity(reading(n, 1.0)) for n in range(COUNT)])
    changed = {n: 2.0 if n % 2 else 1.0 for n in range(COUNT)}  # odd ones change
    outcome = service.batch("", "upsert", [entity(reading(n, v)) for n, v in changed.items()])
    assert not outcome.errors
    assert not outcome.created

    assert store.query("", query(q="level==2", count=True, limit=0)).count == COUNT // 2
    temporal = TemporalStore(store)
    for n in (0, 1, COUNT - 1):
        current = store.get("", f"urn:ngsi-ld:Sensor:{n:04d}")
        assert current is not None
        series = temporal.read("", current, tl.TemporalQuery(), [iri("level")])[iri("level")]
        values = [row.instance["value"] for row in series.items]
        assert values == ([1.0, 2.0] if n % 2 else [1.0])
