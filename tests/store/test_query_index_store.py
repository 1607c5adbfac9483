"""The store keeps `attr_index` exactly in step with its entities on every back-end: the rows
of a stored entity are `index_rows` of it, rewritten on update and gone with the entity
(nothing cascades: the table has no foreign key, so the store must delete them itself)."""

from __future__ import annotations

from collections import Counter

from cityhub.ngsild.query import index_rows
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.store.helpers import Clock, attrs, query, vehicle

TENANT = "city"


def stored_rows(store: SqlStore) -> Counter[tuple[object, ...]]:
    with store.db.transaction(write=False) as conn:
        rows = conn.execute(
            "SELECT e.id, i.path, i.kind, i.num, i.txt FROM attr_index i "
            "JOIN entities e ON e.eid = i.eid WHERE i.tenant = ?", (TENANT,)).fetchall()
        orphans = conn.execute(
            "SELECT count(*) FROM attr_index WHERE tenant = ? AND eid NOT IN "
            "(SELECT eid FROM entities)", (TENANT,)).fetchone()[0]
    assert orphans == 0
    return Counter(tuple(row) for row in rows)


def expected_rows(store: SqlStore, *ids: str) -> Counter[tuple[object, ...]]:
    found: Counter[tuple[object, ...]] = Counter()
    for entity_id in ids:
        entity = store.get(TENANT, entity_id)
        assert entity is not None
        found.update((entity_id, *row) for row in index_rows(entity))
    return found


def ids_matching(store: SqlStore, q: str) -> list[str]:
    return [e["id"] for e in store.query(TENANT, query(q=q)).entities]


def test_index_rows_follow_creates_updates_and_deletes(
        service: EntityService, store: SqlStore, clock: Clock) -> None:
    one, two, three = vehicle(1, 50.0), vehicle(2, 60.0), vehicle(3, 70.0)
    service.batch(TENANT, "upsert", [one, two, three])
    assert stored_rows(store) == expected_rows(store, one["id"], two["id"], three["id"])

    clock.tick()
    service.update_attrs(TENANT, one["id"], attrs({"speed": 99.5}))
    assert stored_rows(store) == expected_rows(store, one["id"], two["id"], three["id"])
    assert ids_matching(store, "speed==99.5") == [one["id"]]
    assert ids_matching(store, "speed==50") == []

    clock.tick()
    service.delete(TENANT, two["id"])
    assert stored_rows(store) == expected_rows(store, one["id"], three["id"])
    service.delete_many(TENANT, [three["id"]])
    assert stored_rows(store) == expected_rows(store, one["id"])
    assert ids_matching(store, "speed>0") == [one["id"]]


def test_a_recreated_entity_matches_only_its_new_values(
        service: EntityService, store: SqlStore, clock: Clock) -> None:
    service.create(TENANT, vehicle(1, 50.0))
    service.delete(TENANT, "urn:ngsi-ld:Vehicle:1")
    clock.tick()
    service.create(TENANT, vehicle(1, 80.0))
    assert ids_matching(store, "speed==50") == []
    assert ids_matching(store, "speed==80") == ["urn:ngsi-ld:Vehicle:1"]
    assert stored_rows(store) == expected_rows(store, "urn:ngsi-ld:Vehicle:1")


def test_attribute_timestamps_are_queried_exactly_though_not_indexed(
        service: EntityService, store: SqlStore, clock: Clock) -> None:
    """createdAt/modifiedAt of attributes are not in attr_index: SQL narrows such a q to the
    entities having the attribute and the store tests them in memory, under NOT too."""
    start = clock.text
    service.batch(TENANT, "upsert", [vehicle(1), vehicle(2), vehicle(3)])
    later = clock.tick()
    service.update_attrs(TENANT, "urn:ngsi-ld:Vehicle:2", attrs({"speed": 70.0}))
    assert stored_rows(store) == expected_rows(store, *(f"urn:ngsi-ld:Vehicle:{n}"
                                                          for n in (1, 2, 3)))
    assert ids_matching(store, f"speed.modifiedAt>{start}") == ["urn:ngsi-ld:Vehicle:2"]
    assert ids_matching(store, f"speed.modifiedAt=={later}") == ["urn:ngsi-ld:Vehicle:2"]
    assert ids_matching(store, f"speed.createdAt=={start}") == [
        f"urn:ngsi-ld:Vehicle:{n}" for n in (1, 2, 3)]
    assert ids_matching(store, f"speed.modifiedAt!={later}") == [
        "urn:ngsi-ld:Vehicle:1", "urn:ngsi-ld:Vehicle:3"]
    assert ids_matching(store, "!speed.modifiedAt") == []
    assert ids_matching(store, f"speed.modifiedAt!={start};speed>60") == ["urn:ngsi-ld:Vehicle:2"]
    assert ids_matching(store, f"speed.modifiedAt>{start}|brandName==\"Mercedes\"") == [
        f"urn:ngsi-ld:Vehicle:{n}" for n in (1, 2, 3)]
    page = store.query(TENANT, query(q=f"speed.modifiedAt<{later}", limit=1, count=True))
    assert (page.count, [e["id"] for e in page.entities]) == (2, ["urn:ngsi-ld:Vehicle:1"])
