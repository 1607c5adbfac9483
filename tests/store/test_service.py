"""NGSI-LD write operations through `EntityService` on every store back-end: what each
operation keeps, adds and removes, its errors, and the timestamps it sets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from cityhub.ngsild.errors import AlreadyExists, BadRequestData, ResourceNotFound
from cityhub.ngsild.model import Entity
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.store.helpers import Clock, attrs, entity, history, iri, vehicle

V1 = "urn:ngsi-ld:Vehicle:1"
SPEED, BRAND, PARKED, LOCATION = iri("speed"), iri("brandName"), iri("isParked"), iri("location")


def stored(store: SqlStore, entity_id: str = V1, tenant: str = "") -> Entity:
    found = store.get(tenant, entity_id)
    assert found is not None, f"{entity_id} is not stored"
    return found


# -- create / get / replace / delete -------------------------------------------------------------


def test_create_stores_the_entity_with_timestamps(
    service: EntityService, store: SqlStore, clock: Clock
) -> None:
    service.create("", vehicle())
    got = stored(store)
    assert got["id"] == V1
    assert got["type"] == [iri("Vehicle")]
    assert got["createdAt"] == got["modifiedAt"] == clock.text
    assert got["attrs"][SPEED] == [{"type": "Property", "value": 50.0, "unitCode": "KMH",
                                    "createdAt": clock.text, "modifiedAt": clock.text}]
    assert got["attrs"][PARKED][0]["object"] == "urn:ngsi-ld:Parking:1"
    assert got["attrs"][LOCATION][0]["type"] == "GeoProperty"
    assert set(got["attrs"]) == {SPEED, BRAND, PARKED, LOCATION}


def test_get_of_an_unknown_entity_is_none(store: SqlStore) -> None:
    assert store.get("", V1) is None


def test_create_twice_is_already_exists_and_keeps_the_first(
    service: EntityService, store: SqlStore, clock: Clock
) -> None:
    service.create("", vehicle(speed=50.0))
    first = stored(store)
    clock.tick()
    with pytest.raises(AlreadyExists):
        service.create("", vehicle(speed=99.0))
    assert stored(store) == first


def test_replace_keeps_created_at_and_moves_modified_at(
    service: EntityService, store: SqlStore, clock: Clock
) -> None:
    service.create("", vehicle())
    created = clock.text
    later = clock.tick(60)
    service.replace("", entity({"id": V1, "type": "Car", "speed": 7}))
    got = stored(store)
    assert got["createdAt"] == created
    assert got["modifiedAt"] == later
    assert got["type"] == [iri("Car")]
    assert set(got["attrs"]) == {SPEED}, "replace drops the attributes it does not name"
    assert got["attrs"][SPEED][0]["value"] == 7


def test_replace_without_type_keeps_the_type(service: EntityService, store: SqlStore) -> None:
    service.create("", vehicle())
    service.replace("", entity({"id": V1, "speed": 7}, require_type=False))
    assert stored(store)["type"] == [iri("Vehicle")]


def test_delete_removes_the_entity(service: EntityService, store: SqlStore) -> None:
    service.create("", vehicle())
    service.delete("", V1)
    assert store.get("", V1) is None
    with pytest.raises(ResourceNotFound):
        service.delete("", V1)


@pytest.mark.parametrize(
    "operation",
    [
        lambda s, t: s.replace(t, vehicle()),
        lambda s, t: s.delete(t, V1),
        lambda s, t: s.append_attrs(t, V1, attrs({"speed": 1}), overwrite=True),
        lambda s, t: s.update_attrs(t, V1, attrs({"speed": 1})),
        lambda s, t: s.partial_update_attr(t, V1, SPEED, attrs({"speed": 1})[SPEED]),
        lambda s, t: s.replace_attr(t, V1, SPEED, attrs({"speed": 1})[SPEED]),
        lambda s, t: s.delete_attr(t, V1, SPEED, None, False),
        lambda s, t: s.merge(t, V1, entity({"id": V1, "speed": 1}, require_type=False)),
    ],
    ids=["replace", "delete", "append", "update", "partial", "replace_attr", "delete_attr",
         "merge"],
)
def test_every_operation_on_an_unknown_entity_is_not_found_and_writes_nothing(
    service: EntityService, store: SqlStore, store_url: str, operation: Callable[..., object]
) -> None:
    with pytest.raises(ResourceNotFound):
        operation(service, "city")
    assert store.get("city", V1) is None
    assert not store.tenant_exists("city"), "a failed write must not create its tenant"
    service.create("city", vehicle())
    other_process = SqlStore.open(store_url)
    try:
        assert other_process.tenant_exists("city"), "the tenant was written with its entity"
    finally:
        other_process.close()


# -- attribute operations ----------------------------------------------------------------------


def test_append_adds_and_overwrites_keeping_created_at(
    service: EntityService, store: SqlStore, clock: Clock
) -> None:
    service.create("", vehicle())
    created = clock.text
    later = clock.tick()
    outcome = service.append_attrs("", V1, attrs({"speed": 80, "color": "red"}), overwrite=True)
    assert sorted(outcome.updated) == sorted([SPEED, iri("color")])
    assert outcome.not_updated == []
    got = stored(store)
    assert got["attrs"][SPEED] == [{"type": "Property", "value": 80,
                                    "createdAt": created, "modifiedAt": later}]
    assert got["attrs"][iri("color")][0]["createdAt"] == later
    assert got["attrs"][BRAND][0]["modifiedAt"] == created, "untouched attributes keep theirs"
    assert (got["createdAt"], got["modifiedAt"]) == (created, later)


def test_append_without_overwrite_keeps_existing_attributes(
    service: EntityService, store: SqlStore
) -> None:
    service.create("", vehicle(speed=50.0))
    outcome = service.append_attrs("", V1, attrs({"speed": 80, "color": "red"}), overwrite=False)
    assert outcome.updated == [iri("color")]
    assert [name for name, _ in outcome.not_updated] == [SPEED]
    got = stored(store)
    assert got["attrs"][SPEED][0]["value"] == 50.0
    assert got["attrs"][iri("color")][0]["value"] == "red"


def test_append_with_a_dataset_id_adds_an_instance(
    service: EntityService, store: SqlStore
) -> None:
    service.create("", vehicle())
    service.append_attrs(
        "", V1, attrs({"speed": {"value": 3, "datasetId": "urn:ngsi-ld:Dataset:gps"}}),
        overwrite=True,
    )
    instances = stored(store)["attrs"][SPEED]
    assert [(i.get("datasetId"), i["value"]) for i in instances] == [
        (None, 50.0), ("urn:ngsi-ld:Dataset:gps", 3)]


@pytest.mark.parametrize("on_the_loop", [False, True], ids=["thread", "event-loop"])
def test_update_changes_only_existing_attributes(
    service: EntityService, store: SqlStore, clock: Clock, on_the_loop: bool
) -> None:
    service.create("", vehicle())
    later = clock.tick()
    update = attrs({"speed": 10, "color": "red"})
    outcome = (asyncio.run(service.update_attrs_async("", V1, update)) if on_the_loop
               else service.update_attrs("", V1, update))
    assert outcome.updated == [SPEED]
    assert [name for name, _ in outcome.not_updated] == [iri("color")]
    got = stored(store)
    assert got["attrs"][SPEED][0]["value"] == 10
    assert got["attrs"][SPEED][0]["modifiedAt"] == later
    assert iri("color") not in got["attrs"]


def test_partial_update_merges_the_fragment(
    service: EntityService, store: SqlStore, clock: Clock
) -> None:
    service.create("", vehicle())
    created = clock.text
    later = clock.tick()
    service.partial_update_attr("", V1, SPEED, attrs({"speed": {"value": 60}})[SPEED])
    assert stored(store)["attrs"][SPEED] == [{"type": "Property", "value": 60, "unitCode": "KMH",
                                              "createdAt": created, "modifiedAt": later}]


def test_partial_update_errors(service: EntityService, store: SqlStore) -> None:
    service.create("", vehicle())
    before = stored(store)
    with pytest.raises(ResourceNotFound):
        service.partial_update_attr("", V1, iri("color"), attrs({"color": "red"})[iri("color")])
    null = attrs({"speed": {"value": "urn:ngsi-ld:null"}}, allow_null=True)[SPEED]
    with pytest.raises(BadRequestData):
        service.partial_update_attr("", V1, SPEED, null)
    assert stored(store) == before


def test_replace_attr_swaps_every_instance(service: EntityService, store: SqlStore) -> None:
    service.create("", vehicle())
    service.append_attrs(
        "", V1, attrs({"speed": {"value": 3, "datasetId": "urn:ngsi-ld:Dataset:gps"}}),
        overwrite=True,
    )
    service.replace_attr("", V1, SPEED, attrs({"speed": 9})[SPEED])
    assert [i["value"] for i in stored(store)["attrs"][SPEED]] == [9]


def test_delete_attr_by_dataset_id_and_all(service: EntityService, store: SqlStore) -> None:
    service.create("", vehicle())
    gps = "urn:ngsi-ld:Dataset:gps"
    service.append_attrs("", V1, attrs({"speed": {"value": 3, "datasetId": gps}}), overwrite=True)
    service.delete_attr("", V1, SPEED, None, False)
    assert [i.get("datasetId") for i in stored(store)["attrs"][SPEED]] == [gps]
    with pytest.raises(ResourceNotFound):
        service.delete_attr("", V1, SPEED, "urn:ngsi-ld:Dataset:other", False)
    service.delete_attr("", V1, BRAND, None, True)
    service.delete_attr("", V1, SPEED, gps, False)
    assert set(stored(store)["attrs"]) == {PARKED, LOCATION}
    with pytest.raises(ResourceNotFound):
        service.delete_attr("", V1, SPEED, None, True)


def test_merge_adds_merges_and_deletes_with_null(
    service: EntityService, store: SqlStore, clock: Clock
) -> None:
    service.create("", vehicle())
    created = clock.text
    later = clock.tick()
    patch = entity(
        {"id": V1, "type": "Car", "scope": "/Madrid/Centro", "speed": {"value": 70},
         "brandName": "urn:ngsi-ld:null", "color": "red"},
        require_type=False, allow_null=True,
    )
    service.merge("", V1, patch)
    got = stored(store)
    assert got["type"] == sorted([iri("Car"), iri("Vehicle")])
    assert got["scope"] == ["/Madrid/Centro"]
    assert got["attrs"][SPEED] == [{"type": "Property", "value": 70, "unitCode": "KMH",
                                    "createdAt": created, "modifiedAt": later}]
    assert BRAND not in got["attrs"]
    assert got["attrs"][iri("color")][0]["value"] == "red"
    assert got["modifiedAt"] == later


# -- batch operations --------------------------------------------------------------------------


def test_batch_create_writes_the_good_entities_and_reports_the_bad(
    service: EntityService, store: SqlStore
) -> None:
    service.create("", vehicle(1))
    before = (stored(store), history(store, "", V1))
    outcome = service.batch("", "create", [vehicle(1, 99.0), vehicle(2), vehicle(3)])
    assert outcome.success == ["urn:ngsi-ld:Vehicle:2", "urn:ngsi-ld:Vehicle:3"]
    assert outcome.created == outcome.success
    assert [(i, type(e)) for i, e in outcome.errors] == [(V1, AlreadyExists)]
    assert store.get("", "urn:ngsi-ld:Vehicle:3") is not None
    assert len(history(store, "", "urn:ngsi-ld:Vehicle:3")) == 4
    assert (stored(store), history(store, "", V1)) == before


def test_batch_upsert_creates_and_replaces(
    service: EntityService, store: SqlStore, clock: Clock
) -> None:
    service.create("", vehicle(1))
    created = clock.text
    clock.tick()
    outcome = service.batch("", "upsert", [entity({"id": V1, "type": "Vehicle", "speed": 1}),
                                           vehicle(2)])
    assert outcome.success == [V1, "urn:ngsi-ld:Vehicle:2"]
    assert outcome.created == ["urn:ngsi-ld:Vehicle:2"]
    got = stored(store)
    assert set(got["attrs"]) == {SPEED}
    assert got["createdAt"] == created


def test_batch_upsert_with_update_appends(service: EntityService, store: SqlStore) -> None:
    service.create("", vehicle(1))
    service.batch("", "upsert", [entity({"id": V1, "type": "Car", "color": "red"})],
                  replace=False)
    got = stored(store)
    assert set(got["attrs"]) == {SPEED, BRAND, PARKED, LOCATION, iri("color")}
    assert got["type"] == sorted([iri("Car"), iri("Vehicle")])


def test_batch_update_and_merge_need_existing_entities(
    service: EntityService, store: SqlStore
) -> None:
    service.create("", vehicle(1))
    missing = "urn:ngsi-ld:Vehicle:404"
    for mode in ("update", "merge"):
        outcome = service.batch("", mode, [entity({"id": V1, "speed": 5}, require_type=False),
                                           entity({"id": missing, "speed": 5},
                                                  require_type=False)])
        assert outcome.success == [V1]
        assert [(i, type(e)) for i, e in outcome.errors] == [(missing, ResourceNotFound)]
    assert stored(store)["attrs"][SPEED][0]["value"] == 5
    assert store.get("", missing) is None


def test_batch_refuses_an_entity_twice(service: EntityService, store: SqlStore) -> None:
    outcome = service.batch("", "create", [vehicle(1), vehicle(1, speed=2.0), vehicle(2)])
    assert outcome.success == ["urn:ngsi-ld:Vehicle:2"]
    assert [(i, type(e)) for i, e in outcome.errors] == [(V1, BadRequestData)]
    assert store.get("", V1) is None


def test_delete_many_reports_the_missing(service: EntityService, store: SqlStore) -> None:
    service.batch("", "create", [vehicle(1), vehicle(2)])
    outcome = service.delete_many("", [V1, "urn:ngsi-ld:Vehicle:404"])
    assert outcome.success == [V1]
    assert [i for i, _ in outcome.errors] == ["urn:ngsi-ld:Vehicle:404"]
    assert store.get("", V1) is None
    assert store.get("", "urn:ngsi-ld:Vehicle:2") is not None


@pytest.mark.parametrize("on_the_loop", [False, True], ids=["thread", "event-loop"])
def test_attribute_updates_record_exactly_what_changed(
    service: EntityService, store: SqlStore, clock: Clock, on_the_loop: bool
) -> None:
    """The attribute updates name the attributes they touch, so the store compares only
    those: the other attributes must neither be recorded as changed nor as deleted, and an
    update to the stored value records nothing and keeps the entity."""
    seen: list[tuple[str, ...]] = []
    store.listeners.append(lambda _conn, changes: seen.extend(c.attrs for c in changes))
    service.create("", vehicle())
    created = stored(store)
    rows = len(history(store, "", V1))
    clock.tick()
    service.partial_update_attr("", V1, SPEED, attrs({"speed": {"value": 60}})[SPEED])
    update = attrs({"brandName": "Seat", "color": "red"})
    if on_the_loop:
        asyncio.run(service.update_attrs_async("", V1, update))
    else:
        service.update_attrs("", V1, update)
    recorded = history(store, "", V1)[rows:]
    assert [(attr, deleted) for attr, _, deleted, _ in recorded] == [(SPEED, 0), (BRAND, 0)]
    assert seen[1:] == [(SPEED,), (BRAND,)]
    after = stored(store)
    assert set(after["attrs"]) == set(created["attrs"])
    clock.tick()
    service.partial_update_attr("", V1, SPEED, attrs({"speed": {"value": 60}})[SPEED])
    assert len(history(store, "", V1)) == rows + 2
    assert len(seen) == 3
    assert stored(store) == after
