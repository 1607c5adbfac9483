"""An update that keeps an entity's types and scopes rewrites only the index rows of the
attributes it changed (sql.SqlStore._narrow_index), and touches the discovery census only
when the attributes' kinds change. These tests pin what that narrower write must still get
right on every back-end: the other attributes' rows stay as they were and stay queryable, q
sees the new value of the changed attribute, the census follows added, removed and retyped
attributes, and a moved GeoProperty moves its box in the spatial index."""

from __future__ import annotations

from cityhub.ngsild.geoquery import parse_geoquery
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.store.helpers import Clock, attrs, iri, query, rows_in, vehicle
from tests.store.test_query_index_store import TENANT, expected_rows, ids_matching, stored_rows

ONE, TWO = "urn:ngsi-ld:Vehicle:1", "urn:ngsi-ld:Vehicle:2"
MADRID = parse_geoquery("near;maxDistance==2000", "Point", "[-3.70,40.41]")
BARCELONA = parse_geoquery("near;maxDistance==2000", "Point", "[2.17,41.38]")


def row_places(store: SqlStore, entity_id: str) -> dict[tuple[object, ...], str]:
    """Each stored index row of an entity with its physical place (SQLite rowid, PostgreSQL
    ctid): a row deleted and inserted again gets a new place."""
    place = "i.rowid" if store.db.dialect == "sqlite" else "i.ctid::text"
    with store.db.transaction(write=False) as conn:
        rows = conn.execute(
            f"SELECT i.path, i.kind, i.num, i.txt, {place} FROM attr_index i "  # noqa: S608
            "JOIN entities e ON e.eid = i.eid WHERE e.tenant = ? AND e.id = ?",
            (TENANT, entity_id)).fetchall()
    return {tuple(row[:4]): str(row[4]) for row in rows}


def census(store: SqlStore) -> dict[str, tuple[int, dict[str, frozenset[str]]]]:
    return {info.type: (info.entity_count, dict(info.attributes)) for info in store.types(TENANT)}


def near(store: SqlStore, geo: object) -> list[str]:
    return [e["id"] for e in store.query(TENANT, query(geo=geo)).entities]


def test_a_partial_update_leaves_the_other_attributes_rows_in_place(
        service: EntityService, store: SqlStore, clock: Clock) -> None:
    service.batch(TENANT, "upsert", [vehicle(1, 50.0), vehicle(2, 60.0)])
    before = row_places(store, ONE)
    clock.tick()
    service.partial_update_attr(TENANT, ONE, iri("speed"),
                                attrs({"speed": {"value": 99.5}})[iri("speed")])
    after = row_places(store, ONE)
    assert stored_rows(store) == expected_rows(store, ONE, TWO)
    kept = {row: at for row, at in before.items() if row in after}
    assert len(before) - len(kept) == 1  # only the old speed value row went
    assert all(after[row] == at for row, at in kept.items())
    assert ids_matching(store, "speed==99.5") == [ONE]
    assert ids_matching(store, "speed==50") == []
    assert ids_matching(store, "speed.unitCode==\"KMH\"") == [ONE, TWO]
    assert ids_matching(store, "brandName==\"Mercedes\";isParked==\"urn:ngsi-ld:Parking:1\"") == [
        ONE, TWO]
    assert ids_matching(store, "speed>55") == [ONE, TWO]


def test_a_multi_attribute_update_rewrites_each_changed_attribute(
        service: EntityService, store: SqlStore, clock: Clock) -> None:
    service.batch(TENANT, "upsert", [vehicle(1, 50.0), vehicle(2, 60.0)])
    clock.tick()
    result = service.update_attrs(TENANT, ONE, attrs({
        "speed": {"type": "Property", "value": 70.0, "unitCode": "MPH",
                  "observedAt": "2026-01-01T12:00:05Z"},
        "brandName": "Seat"}))
    assert sorted(result.updated) == sorted([iri("speed"), iri("brandName")])
    assert stored_rows(store) == expected_rows(store, ONE, TWO)
    assert ids_matching(store, "speed==70;speed.unitCode==\"MPH\"") == [ONE]
    assert ids_matching(store, "speed.observedAt==2026-01-01T12:00:05Z") == [ONE]
    assert ids_matching(store, "brandName==\"Seat\"") == [ONE]
    assert ids_matching(store, "brandName==\"Mercedes\"") == [TWO]
    assert ids_matching(store, "speed.unitCode==\"KMH\"") == [TWO]
    assert ids_matching(store, "isParked==\"urn:ngsi-ld:Parking:1\"") == [ONE, TWO]


def test_the_census_follows_added_removed_and_retyped_attributes(
        service: EntityService, store: SqlStore, clock: Clock) -> None:
    service.batch(TENANT, "upsert", [vehicle(1), vehicle(2)])
    vehicle_type = iri("Vehicle")
    start = census(store)
    for speed in (61.0, 62.0, 63.0):
        clock.tick()
        service.update_attrs(TENANT, ONE, attrs({"speed": speed}))
    assert census(store) == start

    clock.tick()
    service.update_attrs(TENANT, ONE, attrs({
        "brandName": {"type": "Relationship", "object": "urn:ngsi-ld:Brand:1"}}))
    kinds = census(store)[vehicle_type][1]
    assert kinds[iri("brandName")] == frozenset({"Property", "Relationship"})
    clock.tick()
    service.update_attrs(TENANT, TWO, attrs({
        "brandName": {"type": "Relationship", "object": "urn:ngsi-ld:Brand:2"}}))
    assert census(store)[vehicle_type][1][iri("brandName")] == frozenset({"Relationship"})
    assert ids_matching(store, "brandName==\"urn:ngsi-ld:Brand:1\"") == [ONE]

    clock.tick()
    service.append_attrs(TENANT, ONE, attrs({"colour": "red"}), overwrite=True)
    assert census(store)[vehicle_type][1][iri("colour")] == frozenset({"Property"})
    clock.tick()
    service.delete_attr(TENANT, ONE, iri("colour"), None, False)
    assert iri("colour") not in census(store)[vehicle_type][1]
    assert census(store)[vehicle_type][0] == 2
    assert stored_rows(store) == expected_rows(store, ONE, TWO)


def test_a_moved_location_moves_its_box_and_other_updates_keep_it(
        service: EntityService, store: SqlStore, clock: Clock) -> None:
    service.batch(TENANT, "upsert", [vehicle(1), vehicle(2)])
    assert near(store, MADRID) == [ONE, TWO]
    clock.tick()
    service.update_attrs(TENANT, ONE, attrs({"speed": 10.0}))
    assert near(store, MADRID) == [ONE, TWO]

    clock.tick()
    service.partial_update_attr(TENANT, ONE, iri("location"), attrs({"location": {
        "type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.17, 41.38]}}})[
        iri("location")])
    assert near(store, MADRID) == [TWO]
    assert near(store, BARCELONA) == [ONE]
    assert rows_in(store, "geo_index", TENANT) == 2
    assert ids_matching(store, "speed==10") == [ONE]
    assert stored_rows(store) == expected_rows(store, ONE, TWO)
