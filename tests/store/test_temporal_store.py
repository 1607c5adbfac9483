"""History reads and temporal writes on every back-end (SQLite file, PostgreSQL schema)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cityhub.ngsild import temporal as tl
from cityhub.ngsild.errors import BadRequestData, ResourceNotFound
from cityhub.ngsild.model import Entity
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from cityhub.store.temporal import TemporalStore
from tests.store.helpers import TERMS, Clock, attrs, entity, history, iri

V1, V2 = "urn:ngsi-ld:Vehicle:1", "urn:ngsi-ld:Vehicle:2"
SPEED, STATE, FLAG = iri("speed"), iri("state"), iri("flag")
DAY0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: float) -> str:
    return (DAY0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def t(minutes: float) -> float:
    return (DAY0 + timedelta(minutes=minutes)).timestamp()


@pytest.fixture
def temporal(store: SqlStore, clock: Clock) -> TemporalStore:
    return TemporalStore(store, clock=clock)


def observe(service: EntityService, clock: Clock, entity_id: str, values: list[Any],
            attr: str = "speed", start: float = 0, step: float = 10, **extra: Any) -> None:
    """Write values one by one, the k-th observed at start + k*step minutes."""
    for k, value in enumerate(values):
        clock.tick()
        payload = {attr: {"type": "Property", "value": value, "observedAt": at(start + k * step),
                          **extra}}
        service.append_attrs("", entity_id, attrs(payload), overwrite=True)


@pytest.fixture
def vehicle(service: EntityService, clock: Clock) -> Entity:
    """V1 whose speed was 10, 20, ..., 60 at minutes 0, 10, ..., 50."""
    service.create("", entity({"id": V1, "type": "Vehicle", "brand": "X"}))
    observe(service, clock, V1, [10, 20, 30, 40, 50, 60])
    stored = service.store.get("", V1)
    assert stored is not None
    return stored


def query(**params: Any) -> tl.TemporalQuery:
    return tl.parse_temporal_query(**params)


def values(series: tl.Series) -> list[Any]:
    return [tl.row_value(r) for r in series.items]


# -- reading instances --------------------------------------------------------------------------


def test_history_comes_oldest_first_with_instance_ids(
    temporal: TemporalStore, vehicle: Entity
) -> None:
    series = temporal.read("", vehicle, query())
    assert set(series) == {SPEED, iri("brand")}
    assert values(series[SPEED]) == [10, 20, 30, 40, 50, 60]
    assert [r.time for r in series[SPEED].items] == [t(m) for m in range(0, 60, 10)]
    assert len({r.hid for r in series[SPEED].items}) == 6
    assert series[SPEED].kind == "Property"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"timerel": "before", "time_at": at(20)}, [10, 20]),  # before: strictly earlier
        ({"timerel": "after", "time_at": at(20)}, [30, 40, 50, 60]),  # after: from timeAt on
        ({"timerel": "between", "time_at": at(10), "end_time_at": at(40)}, [20, 30, 40]),
        ({"last_n": 2}, [50, 60]),
        ({"last_n": 2, "timerel": "before", "time_at": at(35)}, [30, 40]),
        ({"last_n": 99}, [10, 20, 30, 40, 50, 60]),
    ],
)
def test_time_filters_and_last_n(
    temporal: TemporalStore, vehicle: Entity, params: dict[str, Any], expected: list[int]
) -> None:
    assert values(temporal.read("", vehicle, query(**params), {SPEED})[SPEED]) == expected


def test_the_instance_limit_cuts_a_series(store: SqlStore, clock: Clock, vehicle: Entity) -> None:
    small = TemporalStore(store, clock=clock, instance_limit=4)
    first = small.read("", vehicle, query(), {SPEED})[SPEED]
    assert (values(first), first.truncated) == ([10, 20, 30, 40], True)
    last = small.read("", vehicle, query(last_n=5), {SPEED})[SPEED]
    assert (values(last), last.truncated) == ([30, 40, 50, 60], True)
    few = small.read("", vehicle, query(last_n=3), {SPEED})[SPEED]
    assert (values(few), few.truncated) == ([40, 50, 60], False)


def test_attributes_include_deleted_ones(
    temporal: TemporalStore, service: EntityService, vehicle: Entity
) -> None:
    service.delete_attr("", V1, iri("brand"), None, False)
    assert temporal.attributes("", V1) == sorted([SPEED, iri("brand")])
    assert temporal.attributes("", V2) == []


def test_system_time_properties(
    temporal: TemporalStore, service: EntityService, clock: Clock, vehicle: Entity
) -> None:
    # modifiedAt: when each instance was written (the clock ticked once per write)
    written = temporal.read("", vehicle, query(timeproperty="modifiedAt"), {SPEED})[SPEED]
    assert [r.time for r in written.items] == [
        (clock.now - timedelta(seconds=s)).timestamp() for s in (5, 4, 3, 2, 1, 0)]
    # createdAt: only the write that created the attribute
    created = temporal.read("", vehicle, query(timeproperty="createdAt"), {SPEED})[SPEED]
    assert values(created) == [10]
    clock.tick()
    service.delete_attr("", V1, SPEED, None, False)
    deleted = temporal.read("", vehicle, query(timeproperty="deletedAt"), {SPEED})[SPEED]
    assert [(r.deleted, r.time) for r in deleted.items] == [(True, clock.now.timestamp())]
    live = temporal.read("", vehicle, query(), {SPEED})[SPEED]
    assert len(live.items) == 6  # deletion markers are not instances


# -- aggregation --------------------------------------------------------------------------------

ALL = ",".join(tl.AGGR_METHODS)


def aggregated(temporal: TemporalStore, subject: Entity, attr: str = SPEED,
               **params: Any) -> list[tl.Bucket]:
    q = query(options="aggregatedValues", aggr_methods=params.pop("methods", ALL), **params)
    return list(temporal.read("", subject, q, {attr})[attr].items)


def test_aggregation_by_period(temporal: TemporalStore, vehicle: Entity) -> None:
    buckets = aggregated(temporal, vehicle, aggr_period="PT20M")
    assert [(b.start, b.end) for b in buckets] == [(t(0), t(20)), (t(20), t(40)), (t(40), t(60))]
    assert [b.values["avg"] for b in buckets] == [15, 35, 55]
    assert [b.values["totalCount"] for b in buckets] == [2, 2, 2]
    assert [b.values["sumsq"] for b in buckets] == [500, 2500, 6100]
    assert buckets[0].values["stddev"] == pytest.approx(7.0710678)


def test_aggregation_without_period_is_one_bucket_over_the_range(
    temporal: TemporalStore, vehicle: Entity
) -> None:
    (whole,) = aggregated(temporal, vehicle)
    assert (whole.start, whole.end) == (t(0), t(50))
    assert whole.values["sum"] == 210
    (between,) = aggregated(temporal, vehicle, timerel="between", time_at=at(5),
                            end_time_at=at(45), aggr_period="PT0S")
    assert (between.start, between.end, between.values["max"]) == (t(5), t(45), 50)


def test_buckets_start_at_time_at(temporal: TemporalStore, vehicle: Entity) -> None:
    buckets = aggregated(temporal, vehicle, timerel="after", time_at=at(5), aggr_period="PT30M",
                         methods="totalCount")
    assert [(b.start, b.values["totalCount"]) for b in buckets] == [(t(5), 3), (t(35), 2)]


def test_last_n_keeps_the_last_periods(temporal: TemporalStore, vehicle: Entity) -> None:
    buckets = aggregated(temporal, vehicle, aggr_period="PT10M", last_n=2, methods="max")
    assert [b.values["max"] for b in buckets] == [50, 60]


def test_fine_periods_are_cut_at_the_instance_limit(
    store: SqlStore, clock: Clock, vehicle: Entity
) -> None:
    small = TemporalStore(store, clock=clock, instance_limit=2)
    fine = query(options="aggregatedValues", aggr_methods="max", aggr_period="PT10M")
    first = small.read("", vehicle, fine, {SPEED})[SPEED]
    assert ([b.values["max"] for b in first.items], first.truncated) == ([10, 20], True)
    last = small.read("", vehicle, query(options="aggregatedValues", aggr_methods="max",
                                         aggr_period="PT10M", last_n=2), {SPEED})[SPEED]
    assert ([b.values["max"] for b in last.items], last.truncated) == ([50, 60], False)


def test_sql_aggregation_agrees_with_the_reference(
    temporal: TemporalStore, service: EntityService, clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(7)
    samples = [round(rng.uniform(-50, 150), 3) for _ in range(120)]
    service.create("", entity({"id": V2, "type": "Sensor"}))
    observe(service, clock, V2, samples, step=7)
    subject = service.store.get("", V2)
    assert subject is not None
    rows = temporal.read("", subject, query(), {SPEED})[SPEED].items
    cases = [(p, ALL) for p in ("PT1H", "PT25M", "P1D", "P1M", None)] + [
        ("PT2H", "stddev,max"), ("P1M", "avg,distinctCount,sumsq"), (None, "min,totalCount")]
    for period, methods in cases:
        with monkeypatch.context() as patch:  # numbers only: SQL must not fall back to Python
            patch.setattr(tl, "aggregate_rows", None)
            got = aggregated(temporal, subject, aggr_period=period, methods=methods)
        buckets = tl.Buckets.build(rows[0].time, rows[-1].time,
                                   tl.parse_duration(period) if period else None)
        want = tl.aggregate_rows(rows, buckets, methods.split(","))
        assert [(b.start, b.end) for b in got] == [(b.start, b.end) for b in want]
        for mine, ref in zip(got, want, strict=True):
            assert dict(mine.values) == pytest.approx(dict(ref.values), rel=1e-9, abs=1e-9)


def test_calendar_periods(temporal: TemporalStore, service: EntityService, clock: Clock) -> None:
    service.create("", entity({"id": V2, "type": "Sensor"}))
    # days 0, 20, 40, 60: Jan 1, Jan 21, Feb 10, Mar 2
    observe(service, clock, V2, [1, 2, 3, 4], start=0, step=60 * 24 * 20)
    subject = service.store.get("", V2)
    assert subject is not None
    buckets = aggregated(temporal, subject, aggr_period="P1M", methods="sum,totalCount")
    feb, mar, apr = (datetime(2026, m, 1, tzinfo=UTC).timestamp() for m in (2, 3, 4))
    assert [(b.start, b.end, b.values["sum"]) for b in buckets] == [
        (t(0), feb, 3), (feb, mar, 3), (mar, apr, 4)]


def test_non_numeric_values_are_aggregated_too(
    temporal: TemporalStore, service: EntityService, clock: Clock
) -> None:
    service.create("", entity({"id": V2, "type": "Sensor"}))
    observe(service, clock, V2, ["b", "a", "b", 5], attr="state")
    observe(service, clock, V2, [True, False, True], attr="flag")
    subject = service.store.get("", V2)
    assert subject is not None
    (state,) = aggregated(temporal, subject, STATE)
    assert dict(state.values) == {"totalCount": 4, "distinctCount": 3, "sum": 5, "avg": 5,
                                  "min": 5, "max": 5, "stddev": 0, "sumsq": 25}
    (flag,) = aggregated(temporal, subject, FLAG, methods="sum,avg,distinctCount")
    assert dict(flag.values) == {"sum": 2, "avg": pytest.approx(2 / 3), "distinctCount": 2}


def test_datasets_are_aggregated_apart(
    temporal: TemporalStore, service: EntityService, clock: Clock
) -> None:
    service.create("", entity({"id": V2, "type": "Sensor"}))
    observe(service, clock, V2, [1, 2], datasetId="urn:ngsi-ld:Dataset:a")
    observe(service, clock, V2, [10, 20, 30], datasetId="urn:ngsi-ld:Dataset:b")
    subject = service.store.get("", V2)
    assert subject is not None
    got = {b.dataset_id: b.values["sum"] for b in aggregated(temporal, subject)}
    assert got == {"urn:ngsi-ld:Dataset:a": 3, "urn:ngsi-ld:Dataset:b": 60}


def test_aggregation_reads_through_the_history_index(
    temporal: TemporalStore, store: SqlStore, vehicle: Entity
) -> None:
    postgres = store.db.dialect == "postgres"
    explain = "EXPLAIN" if postgres else "EXPLAIN QUERY PLAN"
    with store.db.transaction(write=False) as conn:
        if postgres:  # a tiny table would be scanned; ask whether the index can serve
            conn.execute("SET LOCAL enable_seqscan = off")
        plan = conn.execute(
            f"{explain} SELECT dataset_id, CAST((observed_at - ?) / ? AS INTEGER) AS b, "  # noqa: S608
            "count(*), sum(num) FROM attr_history WHERE tenant = ? AND entity_id = ? AND "
            "attr = ? AND deleted = 0 AND observed_at >= ? AND observed_at < ? "
            "GROUP BY dataset_id, b", (0, 60, "", V1, SPEED, 0, 1e12)).fetchall()
    assert any("attr_history_entity" in str(step) for step in plan)


# -- writes -------------------------------------------------------------------------------------


def temporal_vehicle(*speeds: tuple[float, int]) -> Entity:
    return tl.parse_temporal_entity({
        "id": V2, "type": "Vehicle",
        "speed": [{"type": "Property", "value": v, "observedAt": at(m)} for m, v in speeds],
    }, TERMS)


def test_upsert_creates_with_the_newest_instance_current(
    temporal: TemporalStore, store: SqlStore
) -> None:
    assert temporal.upsert("", temporal_vehicle((20, 2), (0, 0), (10, 1)))
    current = store.get("", V2)
    assert current is not None
    assert current["attrs"][SPEED][0]["value"] == 2
    assert values(temporal.read("", current, query(), {SPEED})[SPEED]) == [0, 1, 2]


def test_upsert_twice_adds_nothing_twice(temporal: TemporalStore, store: SqlStore) -> None:
    temporal.upsert("", temporal_vehicle((0, 0), (10, 1)))
    assert not temporal.upsert("", temporal_vehicle((0, 0), (10, 1), (5, 7)))
    current = store.get("", V2)
    assert current is not None
    assert values(temporal.read("", current, query(), {SPEED})[SPEED]) == [0, 7, 1]
    assert current["attrs"][SPEED][0]["value"] == 1  # an older instance leaves the value alone
    temporal.upsert("", temporal_vehicle((30, 3)))
    current = store.get("", V2)
    assert current is not None
    assert current["attrs"][SPEED][0]["value"] == 3


def test_failed_upserts_write_nothing(temporal: TemporalStore, store: SqlStore) -> None:
    untyped = temporal_vehicle((0, 0), (10, 1))
    del untyped["type"]
    with pytest.raises(BadRequestData, match="type"):
        temporal.upsert("", untyped)
    with pytest.raises(ResourceNotFound):
        temporal.upsert("", temporal_vehicle((0, 0), (10, 1)), must_exist=True)
    assert history(store, "", V2) == []
    assert store.get("", V2) is None


def test_upsert_many_writes_several_entities_in_one_transaction(
    temporal: TemporalStore, store: SqlStore
) -> None:
    temporal.upsert("", temporal_vehicle((0, 0), (10, 1)))
    v3 = {**temporal_vehicle((5, 50), (15, 51)), "id": "urn:ngsi-ld:Vehicle:3"}
    repeat = temporal_vehicle((0, 0), (30, 3))  # V2 again: the two payloads are merged
    created = temporal.upsert_many("", [temporal_vehicle((20, 2)), v3, repeat])
    assert created == {"urn:ngsi-ld:Vehicle:3"}
    current = store.get("", V2)
    assert current is not None
    assert current["attrs"][SPEED][0]["value"] == 3
    assert values(temporal.read("", current, query(), {SPEED})[SPEED]) == [0, 1, 2, 3]
    third = store.get("", "urn:ngsi-ld:Vehicle:3")
    assert third is not None
    assert values(temporal.read("", third, query(), {SPEED})[SPEED]) == [50, 51]
    untyped = {k: v for k, v in temporal_vehicle((40, 4)).items() if k != "type"}
    with pytest.raises(BadRequestData):  # one bad entity: nothing of the batch is written
        temporal.upsert_many("", [temporal_vehicle((50, 5)), {**untyped, "id": "urn:x:new"}])
    assert values(temporal.read("", current, query(), {SPEED})[SPEED]) == [0, 1, 2, 3]


def test_upsert_many_known_new_skips_the_held_check(
    temporal: TemporalStore, store: SqlStore
) -> None:
    """known_new is the caller's promise (device ingestion checks message ids): two equal
    instances are then two history rows, as two messages are two observations."""
    temporal.upsert_many("", [temporal_vehicle((0, 0), (10, 1))], known_new=True)
    temporal.upsert_many("", [temporal_vehicle((0, 0))], known_new=True)
    current = store.get("", V2)
    assert current is not None
    assert values(temporal.read("", current, query(), {SPEED})[SPEED]) == [0, 0, 1]


def test_delete_entity_forgets_its_history(
    temporal: TemporalStore, store: SqlStore, vehicle: Entity
) -> None:
    temporal.delete_entity("", V1)
    assert store.get("", V1) is None
    assert history(store, "", V1) == []
    with pytest.raises(ResourceNotFound):
        temporal.delete_entity("", V1)


def test_delete_attribute_and_its_history(
    temporal: TemporalStore, service: EntityService, store: SqlStore, clock: Clock,
    vehicle: Entity
) -> None:
    observe(service, clock, V1, [1, 2], datasetId="urn:ngsi-ld:Dataset:gps")
    temporal.delete_attribute("", V1, SPEED, None, False)
    left = {(a, ds) for a, ds, _deleted, _inst in history(store, "", V1)}
    assert (SPEED, "") not in left
    assert (SPEED, "urn:ngsi-ld:Dataset:gps") in left
    current = store.get("", V1)
    assert current is not None
    assert [i.get("datasetId") for i in current["attrs"][SPEED]] == ["urn:ngsi-ld:Dataset:gps"]
    temporal.delete_attribute("", V1, SPEED, None, True)
    assert SPEED not in temporal.attributes("", V1)
    with pytest.raises(ResourceNotFound):
        temporal.delete_attribute("", V1, SPEED, None, True)
    with pytest.raises(ResourceNotFound):
        temporal.delete_attribute("", V2, SPEED, None, True)


def test_modify_and_delete_one_instance(temporal: TemporalStore, vehicle: Entity) -> None:
    rows = temporal.read("", vehicle, query(), {SPEED})[SPEED].items
    second = tl.instance_urn(rows[1].hid)
    temporal.modify_instance("", V1, SPEED, second,
                             {"type": "Property", "value": 21, "observedAt": at(11)})
    temporal.delete_instance("", V1, SPEED, tl.instance_urn(rows[0].hid))
    after = temporal.read("", vehicle, query(), {SPEED})[SPEED].items
    assert [(tl.row_value(r), r.time) for r in after[:2]] == [(21, t(11)), (30, t(20))]
    with pytest.raises(ResourceNotFound):
        temporal.delete_instance("", V1, SPEED, tl.instance_urn(rows[0].hid))
    with pytest.raises(ResourceNotFound):
        temporal.modify_instance("", V1, iri("brand"), second, {"type": "Property", "value": 1})
    with pytest.raises(BadRequestData, match="datasetId"):
        temporal.modify_instance("", V1, SPEED, second, {"type": "Property", "value": 1,
                                                         "datasetId": "urn:ngsi-ld:Dataset:x"})


def test_modify_keeps_what_the_fragment_leaves_out(
    temporal: TemporalStore, service: EntityService, clock: Clock
) -> None:
    service.create("", entity({"id": V2, "type": "Sensor"}))
    observe(service, clock, V2, [1], unitCode="KMH")
    subject = service.store.get("", V2)
    assert subject is not None
    (row,) = temporal.read("", subject, query(), {SPEED})[SPEED].items
    temporal.modify_instance("", V2, SPEED, tl.instance_urn(row.hid),
                             {"type": "Property", "value": 2})
    (changed,) = temporal.read("", subject, query(), {SPEED})[SPEED].items
    assert (changed.instance["value"], changed.instance["unitCode"], changed.time) == (
        2, "KMH", row.time)
