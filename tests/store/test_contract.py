"""The `Store` contract on every back-end: queries, history, tenants and discovery.

The q, type and scope languages have their own exhaustive tests; here a handful of each shows
that the store compiles them to SQL that selects the same entities on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cityhub.ngsild.geoquery import parse_geoquery
from cityhub.ngsild.model import Entity
from cityhub.store.port import EntityQuery
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.store.helpers import Clock, attrs, entity, history, iri, query, vehicle

V1, V2, V3 = (f"urn:ngsi-ld:Vehicle:{n}" for n in (1, 2, 3))
BIKE, EBIKE = "urn:ngsi-ld:Bike:1", "urn:ngsi-ld:Bike:2"
SPEED, BRAND, PARKED = iri("speed"), iri("brandName"), iri("isParked")


def city() -> list[Entity]:
    """Two vehicles in Madrid, one in Barcelona, a bike and an electric bike."""
    return [
        vehicle(1, 50.0, scope="/Madrid/Centro"),
        vehicle(2, 80.0, brandName="BMW", scope="/Madrid/Norte"),
        vehicle(3, 20.0, scope="/Barcelona",
                location={"type": "Point", "coordinates": [2.17, 41.38]}),
        entity({"id": BIKE, "type": "Bike", "color": "red",
                "location": {"type": "Point", "coordinates": [-3.7005, 40.4105]}}),
        entity({"id": EBIKE, "type": ["Bike", "Electric"], "color": "blue", "battery": 0.9}),
    ]


@pytest.fixture
def populated(service: EntityService) -> SqlStore:
    outcome = service.batch("", "create", city())
    assert not outcome.errors
    return service.store  # type: ignore[return-value]


@pytest.fixture(scope="module")
def city_store(read_only_store_url: str) -> Iterator[SqlStore]:
    """The city on a store shared by the query tests of this module, which only read."""
    store = SqlStore.open(read_only_store_url)
    try:
        assert not EntityService(store, Clock()).batch("", "create", city()).errors
        yield store
    finally:
        store.close()


def ids(store: SqlStore, q: EntityQuery, tenant: str = "") -> list[str]:
    return [e["id"] for e in store.query(tenant, q).entities]


# -- queries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({"ids": (V3, V1)}, [V1, V3]),
        ({"ids": ("urn:ngsi-ld:Vehicle:404",)}, []),
        ({"id_pattern": r"^urn:ngsi-ld:Vehicle:[12]$"}, [V1, V2]),
        ({"id_pattern": "Bike"}, [BIKE, EBIKE]),
        ({"type_": "Vehicle"}, [V1, V2, V3]),
        ({"type_": "Bike"}, [BIKE, EBIKE]),
        ({"type_": "Electric"}, [EBIKE]),
        ({"type_": "Bike,Vehicle"}, [V1, V2, V3, BIKE, EBIKE]),
        ({"type_": "Bike;Electric"}, [EBIKE]),
        ({"type_": "(Bike;Electric)|Vehicle"}, [V1, V2, V3, EBIKE]),
        ({"type_": "Car"}, []),
        ({"q": "speed>40"}, [V1, V2]),
        ({"q": 'brandName=="BMW"'}, [V2]),
        ({"q": 'speed>40;brandName=="Mercedes"'}, [V1]),
        ({"q": "speed<30|battery>0.5"}, [V3, EBIKE]),
        ({"q": "speed==20..60"}, [V1, V3]),
        ({"q": "isParked==urn:ngsi-ld:Parking:1"}, [V1, V2, V3]),
        ({"q": "speed.unitCode==\"KMH\""}, [V1, V2, V3]),
        ({"q": "!speed"}, [BIKE, EBIKE]),
        ({"q": 'color~="^r"'}, [BIKE]),
        ({"scope": "/Madrid/#"}, [V1, V2]),
        ({"scope": "/Madrid/Centro,/Barcelona"}, [V1, V3]),
        ({"attrs_any": ("battery",)}, [EBIKE]),
        ({"attrs_any": ("battery", "brandName")}, [V1, V2, V3, EBIKE]),
        ({"type_": "Vehicle", "q": "speed>30", "scope": "/Madrid/Norte"}, [V2]),
    ],
)
def test_query_selects(city_store: SqlStore, selection: dict[str, object],
                       expected: list[str]) -> None:
    assert ids(city_store, query(**selection)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "expected"),
    [
        ("near;maxDistance==1000", "Point", "[-3.7,40.41]", [V1, V2, BIKE]),
        ("near;maxDistance==10", "Point", "[-3.699,40.41]", [V1]),
        ("near;minDistance==100000", "Point", "[-3.7,40.41]", [V3]),
        ("within", "Polygon", "[[[2,41],[3,41],[3,42],[2,42],[2,41]]]", [V3]),
        ("within", "Polygon", "[[[-4,40],[-3,40],[-3,41],[-4,41],[-4,40]]]", [V1, V2, BIKE]),
        ("intersects", "Polygon", "[[[0,0],[1,0],[1,1],[0,1],[0,0]]]", []),
    ],
)
def test_geo_query_selects(city_store: SqlStore, georel: str, geometry: str,
                           coordinates: str, expected: list[str]) -> None:
    geo = parse_geoquery(georel, geometry, coordinates)
    assert ids(city_store, query(geo=geo)) == expected


def test_geo_query_on_another_geoproperty(service: EntityService, store: SqlStore) -> None:
    service.create("", vehicle(1, area={"type": "GeoProperty",
                                        "value": {"type": "Point", "coordinates": [10, 10]}}))
    service.create("", vehicle(2))
    geo = parse_geoquery("near;maxDistance==100", "Point", "[10,10]", "area")
    assert ids(store, query(geo=geo)) == [V1]


def test_geo_query_follows_a_moved_entity(service: EntityService, store: SqlStore) -> None:
    service.create("", vehicle(1))
    barcelona = parse_geoquery("near;maxDistance==1000", "Point", "[2.17,41.38]")
    assert ids(store, query(geo=barcelona)) == []
    service.append_attrs("", V1, attrs({"location": {"type": "Point",
                                                     "coordinates": [2.17, 41.38]}}),
                         overwrite=True)
    assert ids(store, query(geo=barcelona)) == [V1]


def test_geo_query_with_paging_and_count(city_store: SqlStore) -> None:
    geo = parse_geoquery("near;maxDistance==1000", "Point", "[-3.7,40.41]")
    result = city_store.query("", query(geo=geo, limit=2, offset=1, count=True))
    assert [e["id"] for e in result.entities] == [V2, BIKE]
    assert result.count == 3


def test_a_page_of_one_type_is_the_same_page_of_all_its_entities(city_store: SqlStore) -> None:
    """A query for one type alone walks the type's index rows (`SqlStore._source`); its
    pages and counts are those of the entities filtered by type (here: by a union with a
    type nobody has, which takes the general path)."""
    for type_ in ("Vehicle", "Bike", "Electric"):
        for limit, offset in ((1, 0), (2, 1), (20, 0), (0, 0), (5, 4)):
            walked = city_store.query("", query(type_=type_, limit=limit, offset=offset,
                                                count=True))
            filtered = city_store.query("", query(type_=f"{type_},Nobody", limit=limit,
                                                  offset=offset, count=True))
            assert walked == filtered


@pytest.mark.parametrize("attrs", [("speed",), ("battery",), ("color", "battery"), ("nothing",)])
def test_a_page_with_attrs_is_the_same_walked_or_listed(
        city_store: SqlStore, attrs: tuple[str, ...]) -> None:
    """`attrs` with one type or none walk the rows in eid order and probe each where the
    census says that pays (small pages of common attributes), and list the matches
    otherwise (`SqlStore._source`): either way the pages and counts are those of the same
    filter as a q expression, or with a type union, which take the general path."""
    any_of = "|".join(attrs)
    for limit, offset in ((1, 0), (1, 1), (2, 1), (20, 0)):
        for type_ in ("Vehicle", "Bike"):
            walked = city_store.query("", query(type_=type_, attrs_any=attrs, limit=limit,
                                                offset=offset))
            listed = city_store.query("", query(type_=f"{type_},Nobody", q=any_of,
                                                limit=limit, offset=offset))
            assert walked == listed
        walked = city_store.query("", query(attrs_any=attrs, limit=limit, offset=offset))
        listed = city_store.query("", query(q=any_of, limit=limit, offset=offset))
        assert walked == listed


@pytest.mark.parametrize("q", ["speed>0", "speed>=50", 'brandName=="Mercedes"', "battery>0.5",
                               'speed.unitCode=="KMH"', "speed<0", "color"])
def test_a_page_with_one_q_lookup_is_the_same_walked_or_listed(
        city_store: SqlStore, q: str) -> None:
    """A q of one index lookup, with one type or none, is walked and probed where its index
    rows (counted up to a bound) say that pays, and listed otherwise (`SqlStore._source`):
    the pages equal those of the general path (forced here by a type union, or by an
    `idPattern` that every id matches)."""
    for limit, offset in ((1, 0), (1, 1), (2, 1), (20, 0)):
        for type_ in ("Vehicle", "Bike"):
            walked = city_store.query("", query(type_=type_, q=q, limit=limit, offset=offset))
            listed = city_store.query("", query(type_=f"{type_},Nobody", q=q, limit=limit,
                                                offset=offset))
            assert walked == listed
        walked = city_store.query("", query(q=q, limit=limit, offset=offset))
        listed = city_store.query("", query(q=q, id_pattern=".", limit=limit, offset=offset))
        assert walked == listed


def test_limit_offset_and_count(city_store: SqlStore) -> None:
    page = city_store.query("", query(type_="Vehicle", limit=2, count=True))
    assert ([e["id"] for e in page.entities], page.count) == ([V1, V2], 3)
    page = city_store.query("", query(type_="Vehicle", limit=2, offset=2, count=True))
    assert ([e["id"] for e in page.entities], page.count) == ([V3], 3)
    page = city_store.query("", query(limit=0, count=True))
    assert (page.entities, page.count) == ([], 5)
    assert city_store.query("", query()).count is None


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({"type_": "(Bike;Electric)|Vehicle", "q": "speed<30|battery>0.5"}, [V3, EBIKE]),
        ({"type_": "Vehicle", "q": "speed>30", "scope": "/Madrid/Norte"}, [V2]),
        ({"type_": "Bike,Vehicle", "ids": (V3, BIKE)}, [V3, BIKE]),
        ({"type_": "Bike;Electric", "q": "!speed"}, [EBIKE]),
        ({"type_": "Car", "q": "speed>0"}, []),
    ],
)
def test_a_counted_query_with_a_type_counts_what_it_selects(
        city_store: SqlStore, selection: dict[str, object], expected: list[str]) -> None:
    """A count tests the type in SQL, a page alone in memory (`sql._types_in_python`): both
    select the same entities."""
    page = city_store.query("", query(**selection, limit=1, count=True))  # type: ignore[arg-type]
    assert ([e["id"] for e in page.entities], page.count) == (expected[:1], len(expected))
    assert ids(city_store, query(**selection)) == expected  # type: ignore[arg-type]


def test_order_is_creation_order_and_survives_updates(
    populated: SqlStore, service: EntityService
) -> None:
    service.append_attrs("", V1, attrs({"speed": 99}), overwrite=True)
    service.replace("", vehicle(2, 10.0))
    service.merge("", BIKE, entity({"id": BIKE, "color": "green"}, require_type=False))
    assert ids(populated, query()) == [V1, V2, V3, BIKE, EBIKE]
    assert ids(populated, query(q="speed>60")) == [V1]


def test_query_sees_updates_and_deletions(populated: SqlStore, service: EntityService) -> None:
    service.update_attrs("", V3, attrs({"speed": 200}))
    service.delete_attr("", V2, SPEED, None, True)
    service.delete("", V1)
    assert ids(populated, query(q="speed>40")) == [V3]
    assert ids(populated, query(type_="Vehicle")) == [V2, V3]
    assert ids(populated, query(q="!speed")) == [V2, BIKE, EBIKE]


# -- history -----------------------------------------------------------------------------------


def test_history_has_one_row_per_written_instance(
    service: EntityService, store: SqlStore, clock: Clock
) -> None:
    service.create("", vehicle())
    assert sorted(attr for attr, _, _, _ in history(store, "", V1)) == sorted(
        [SPEED, BRAND, PARKED, iri("location")])
    clock.tick()
    service.append_attrs("", V1, attrs({"speed": 60, "brandName": "Mercedes"}), overwrite=True)
    rows = history(store, "", V1)
    assert len(rows) == 5, "only the instance whose value changed gets a row"
    assert rows[-1][:3] == (SPEED, "", 0)
    assert rows[-1][3]["value"] == 60


def test_identical_resend_writes_no_history(
    service: EntityService, store: SqlStore, clock: Clock
) -> None:
    sensor = {"temperature": {"type": "Property", "value": 5, "unitCode": "CEL",
                              "observedAt": "2026-01-01T10:00:00Z",
                              "accuracy": {"type": "Property", "value": 0.5}}}
    service.create("", vehicle(**sensor))
    before = (history(store, "", V1), store.get("", V1))
    clock.tick()
    service.append_attrs("", V1, attrs(sensor), overwrite=True)
    clock.tick()
    service.batch("", "upsert", [vehicle(**sensor)], replace=False)
    assert (history(store, "", V1), store.get("", V1)) == before


def test_history_rows_per_dataset_id(service: EntityService, store: SqlStore) -> None:
    service.create("", entity({"id": V1, "type": "Vehicle", "speed": [
        {"type": "Property", "value": 1, "datasetId": "urn:ngsi-ld:Dataset:a"},
        {"type": "Property", "value": 2, "datasetId": "urn:ngsi-ld:Dataset:b"},
    ]}))
    service.append_attrs("", V1, attrs({"speed": {"value": 3,
                                                  "datasetId": "urn:ngsi-ld:Dataset:b"}}),
                         overwrite=True)
    assert [(d, i["value"]) for _, d, _, i in history(store, "", V1)] == [
        ("urn:ngsi-ld:Dataset:a", 1), ("urn:ngsi-ld:Dataset:b", 2),
        ("urn:ngsi-ld:Dataset:b", 3)]


def test_deletions_leave_markers(service: EntityService, store: SqlStore, clock: Clock) -> None:
    service.create("", vehicle())
    written = len(history(store, "", V1))
    deleted_at = clock.tick()
    service.delete_attr("", V1, SPEED, None, True)
    marker = history(store, "", V1)[written:]
    assert marker == [(SPEED, "", 1, {"type": "Property", "deletedAt": deleted_at})]
    gone_at = clock.tick()
    service.delete("", V1)
    markers = history(store, "", V1)[written + 1:]
    assert sorted(attr for attr, _, deleted, _ in markers if deleted) == sorted(
        [BRAND, PARKED, iri("location")])
    assert {inst["deletedAt"] for _, _, _, inst in markers} == {gone_at}


# -- tenants -----------------------------------------------------------------------------------


def test_tenants_are_isolated(service: EntityService, store: SqlStore) -> None:
    service.create("a", vehicle(1, 10.0))
    service.create("b", vehicle(1, 90.0))
    service.create("b", entity({"id": BIKE, "type": "Bike", "color": "red"}))
    assert store.get("", V1) is None
    assert store.get("a", V1)["attrs"][SPEED][0]["value"] == 10.0  # type: ignore[index]
    assert ids(store, query(q="speed>50"), "a") == []
    assert ids(store, query(q="speed>50"), "b") == [V1]
    assert ids(store, query(type_="Bike"), "a") == []
    near = parse_geoquery("near;maxDistance==1000", "Point", "[-3.7,40.41]")
    assert ids(store, query(geo=near), "a") == [V1]
    assert ids(store, query(geo=near), "") == []
    service.update_attrs("a", V1, attrs({"speed": 11}))
    service.delete("b", V1)
    assert store.get("b", V1) is None
    assert store.get("a", V1)["attrs"][SPEED][0]["value"] == 11  # type: ignore[index]
    assert [t.type for t in store.types("a")] == [iri("Vehicle")]
    assert [(t.type, t.entity_count) for t in store.types("b")] == [(iri("Bike"), 1)]
    assert [a.attribute for a in store.attributes("b")] == [iri("color")]
    assert len(history(store, "a", V1)) == 5
    assert {deleted for _, _, deleted, _ in history(store, "b", V1)} == {0, 1}


def test_tenant_exists_once_written(service: EntityService, store: SqlStore,
                                    store_url: str) -> None:
    assert store.tenant_exists("")
    assert not store.tenant_exists("a")
    service.create("a", vehicle())
    assert store.tenant_exists("a")
    other = SqlStore.open(store_url)
    try:
        assert other.tenant_exists("a")
        assert not other.tenant_exists("b")
    finally:
        other.close()


# -- discovery ---------------------------------------------------------------------------------


def test_types_and_attributes_are_counted(populated: SqlStore) -> None:
    types = {t.type: t for t in populated.types("")}
    assert {t: info.entity_count for t, info in types.items()} == {
        iri("Vehicle"): 3, iri("Bike"): 2, iri("Electric"): 1}
    assert types[iri("Vehicle")].attributes == {
        SPEED: {"Property"}, BRAND: {"Property"}, PARKED: {"Relationship"},
        iri("location"): {"GeoProperty"}}
    assert set(types[iri("Bike")].attributes) == {iri("color"), iri("location"), iri("battery")}
    found = {a.attribute: a for a in populated.attributes("")}
    assert {a: info.entity_count for a, info in found.items()} == {
        SPEED: 3, BRAND: 3, PARKED: 3, iri("location"): 4, iri("color"): 2, iri("battery"): 1}
    assert found[iri("location")].types == {iri("Vehicle"), iri("Bike")}
    assert found[iri("battery")].types == {iri("Bike"), iri("Electric")}
    assert found[PARKED].kinds == {"Relationship"}


def test_discovery_counts_only_existing_entities(
    populated: SqlStore, service: EntityService
) -> None:
    service.delete_many("", [V1, V2, V3])
    service.delete_attr("", EBIKE, iri("battery"), None, True)
    assert {t.type: t.entity_count for t in populated.types("")} == {
        iri("Bike"): 2, iri("Electric"): 1}
    assert {a.attribute: a.entity_count for a in populated.attributes("")} == {
        iri("color"): 2, iri("location"): 1}


def test_discovery_lists_only_attributes_entities_still_have(
    populated: SqlStore, service: EntityService
) -> None:
    service.delete_attr("", EBIKE, iri("battery"), None, True)
    service.replace("", entity({"id": V1, "type": "Vehicle",
                                "speed": {"type": "Relationship", "object": "urn:x:y"}}))
    service.delete_many("", [V2, V3])
    types = {t.type: t for t in populated.types("")}
    assert set(types[iri("Electric")].attributes) == {iri("color")}
    assert types[iri("Vehicle")].attributes == {SPEED: {"Relationship"}}
    assert {a.attribute: a.kinds for a in populated.attributes("")}[SPEED] == {"Relationship"}
    assert {a.attribute: a.types for a in populated.attributes("")}[iri("location")] == {
        iri("Bike")}
