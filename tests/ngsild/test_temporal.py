"""The pure temporal module: durations, temporal query parameters, aggregation, pagination and
the three temporal representations."""

from __future__ import annotations

import contextlib
import math
import statistics
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.ngsild import temporal as tl
from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.model import DEFAULT_VOCAB
from tests.store.helpers import TERMS

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
SPEED = DEFAULT_VOCAB + "speed"


def row(hid: int, t: float, value: Any, kind: str = "Property", ds: str = "",
        **extra: Any) -> tl.HistoryRow:
    member = {"Property": "value", "Relationship": "object", "VocabProperty": "vocab"}[kind]
    instance = {"type": kind, member: value, **extra}
    if ds:
        instance["datasetId"] = ds
    return tl.HistoryRow(hid, ds, t, instance)


# -- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "months", "seconds"),
    [
        ("PT1H", 0, 3600),
        ("P1D", 0, 86400),
        ("P1W", 0, 604800),
        ("PT15M", 0, 900),
        ("PT0.5S", 0, 0.5),
        ("P1Y2M", 14, 0),
        ("P3Y6M4DT12H30M5S", 42, 4 * 86400 + 12 * 3600 + 30 * 60 + 5),
        ("PT0S", 0, 0),
        ("P0D", 0, 0),
    ],
)
def test_durations_parse(text: str, months: int, seconds: float) -> None:
    assert tl.parse_duration(text) == tl.Duration(months, seconds)


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "1H", "PT-1S", "P1H", "PT1D", "P1.5D",
                                  "2026-01-01/P1D", "P1S"])
def test_malformed_durations_are_bad_request_data(text: str) -> None:
    with pytest.raises(BadRequestData, match="aggrPeriodDuration"):
        tl.parse_duration(text)


@given(st.tuples(*(st.integers(0, 500) for _ in range(7))))
def test_any_duration_text_parses_to_its_parts(parts: tuple[int, ...]) -> None:
    years, months, weeks, days, hours, minutes, seconds = parts
    text = f"P{years}Y{months}M{weeks}W{days}DT{hours}H{minutes}M{seconds}S"
    assert tl.parse_duration(text) == tl.Duration(
        years * 12 + months,
        weeks * 604800 + days * 86400 + hours * 3600 + minutes * 60 + seconds,
    )


@given(st.text(max_size=12))
def test_duration_parser_never_fails_otherwise(text: str) -> None:
    with contextlib.suppress(BadRequestData):
        tl.parse_duration(text)


def test_durations_near_the_end_of_time() -> None:
    with pytest.raises(BadRequestData, match="too long"):
        tl.parse_duration("P" + "9" * 5000 + "D")
    late = datetime(9999, 6, 1, tzinfo=UTC)
    with pytest.raises(BadRequestData, match="9999"):
        tl.Buckets.build(late.timestamp(), late.timestamp() + 86400 * 300, tl.Duration(months=12))
    ages = tl.parse_duration("P999999999999D")
    _start, end = tl.Buckets.build(late.timestamp(), late.timestamp(), ages).span(0)
    assert tl.epoch_text(end) == "9999-12-31T23:59:59.000000Z"


def test_calendar_durations_clamp_to_the_end_of_the_month() -> None:
    start = datetime(2026, 1, 31, 6, tzinfo=UTC)
    month = tl.Duration(months=1)
    assert month.times(start, 1) == datetime(2026, 2, 28, 6, tzinfo=UTC)
    assert month.times(start, 2) == datetime(2026, 3, 31, 6, tzinfo=UTC)  # from start, no drift
    assert tl.Duration(months=12).times(start, 1) == datetime(2027, 1, 31, 6, tzinfo=UTC)
    assert tl.Duration(1, 3600).times(start, 1) == datetime(2026, 2, 28, 7, tzinfo=UTC)


# -- the temporal query -------------------------------------------------------------------------


def test_timerels_bound_the_range() -> None:
    at, end = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
    day = 86400.0
    assert tl.parse_temporal_query(timerel="before", time_at=at).bounds() == (None, T0)
    assert tl.parse_temporal_query(timerel="after", time_at=at).bounds() == (T0, None)
    between = tl.parse_temporal_query(timerel="between", time_at=at, end_time_at=end)
    assert between.bounds() == (T0, T0 + day)
    assert tl.parse_temporal_query().bounds() == (None, None)


def test_defaults_and_representations() -> None:
    plain = tl.parse_temporal_query()
    assert (plain.representation, plain.timeproperty, plain.last_n) == ("normalized",
                                                                         "observedAt", None)
    assert tl.parse_temporal_query(options="temporalValues").representation == "temporalValues"
    assert tl.parse_temporal_query(format_="temporalValues").representation == "temporalValues"
    assert tl.parse_temporal_query(options="sysAttrs,keyValues").sys_attrs
    # format wins over options
    assert tl.parse_temporal_query(options="temporalValues",
                                   format_="normalized").representation == "normalized"
    aggregated = tl.parse_temporal_query(options="aggregatedValues", aggr_methods="avg,max,avg",
                                         aggr_period="PT1H")
    assert aggregated.aggr_methods == ("avg", "max")
    assert aggregated.aggr_period == tl.Duration(0, 3600)
    assert tl.parse_temporal_query(options="aggregatedValues", aggr_methods="sum",
                                   aggr_period="PT0S").aggr_period is None
    # aggregation methods without aggregatedValues change nothing
    assert tl.parse_temporal_query(aggr_methods="sum").aggr_methods == ()


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"timerel": "between", "time_at": "2026-01-01T00:00:00Z"}, "endTimeAt"),
        ({"timerel": "after"}, "together"),
        ({"time_at": "2026-01-01T00:00:00Z"}, "together"),
        ({"timerel": "during", "time_at": "2026-01-01T00:00:00Z"}, "timerel"),
        ({"timerel": "after", "time_at": "yesterday"}, "timeAt"),
        ({"timerel": "between", "time_at": "2026-01-02T00:00:00Z",
          "end_time_at": "2026-01-01T00:00:00Z"}, "later"),
        ({"timerel": "between", "time_at": "2026-01-01T00:00:00Z", "end_time_at": "soon"},
         "endTimeAt"),
        ({"last_n": "-1"}, "lastN"),
        ({"last_n": "0"}, "lastN"),
        ({"last_n": "two"}, "lastN"),
        ({"last_n": "1.5"}, "lastN"),
        ({"options": "aggregatedValues", "aggr_methods": "median"}, "median"),
        ({"options": "aggregatedValues"}, "aggrMethods"),
        ({"options": "aggregatedValues", "aggr_methods": "sum", "aggr_period": "1 hour"},
         "aggrPeriodDuration"),
        ({"timeproperty": "observed"}, "timeproperty"),
        ({"options": "temporalValues,aggregatedValues"}, "exclude"),
        ({"options": "count"}, "options"),
        ({"format_": "geojson"}, "format"),
    ],
)
def test_bad_temporal_parameters_are_bad_request_data(params: dict[str, Any],
                                                      fragment: str) -> None:
    with pytest.raises(BadRequestData, match=fragment):
        tl.parse_temporal_query(**params)


@given(st.one_of(st.text(max_size=8), st.integers(-5, 5)))
def test_last_n_is_a_positive_integer_or_bad_request(raw: str | int) -> None:
    try:
        query = tl.parse_temporal_query(last_n=raw)
    except BadRequestData:
        return
    assert query.last_n is None or query.last_n >= 1


@given(st.text(max_size=30))
def test_any_time_at_text_parses_or_is_bad_request(text: str) -> None:
    try:
        query = tl.parse_temporal_query(timerel="after", time_at=text)
    except BadRequestData:
        return
    assert query.time_at is not None
    assert query.time_at.tzinfo is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=6,
)
MEMBERS = ("timerel", "time_at", "end_time_at", "timeproperty", "last_n", "aggr_methods",
           "aggr_period")


@given(st.dictionaries(st.sampled_from(MEMBERS), json_values), st.booleans())
def test_any_json_in_a_temporal_q_is_parsed_or_bad_request(members: dict[str, Any],
                                                           aggregated: bool) -> None:
    """A Query's temporalQ carries JSON: every value is a query or BadRequestData."""
    options = "aggregatedValues" if aggregated else None
    try:
        query = tl.parse_temporal_query(**members, options=options)
    except BadRequestData:
        return
    assert query.timerel in (None, *tl.TIMERELS)
    assert query.last_n is None or query.last_n >= 1
    assert set(query.aggr_methods) <= set(tl.AGGR_METHODS)


# -- aggregation --------------------------------------------------------------------------------

ALL = tl.AGGR_METHODS


def test_aggregation_of_numbers() -> None:
    result = tl.aggregate_values([2, 4, 4, 4, 5, 5, 7, 9], ALL)
    assert result["totalCount"] == 8
    assert result["distinctCount"] == 5
    assert result["sum"] == 40
    assert result["avg"] == 5
    assert (result["min"], result["max"]) == (2, 9)
    assert result["sumsq"] == 232
    assert result["stddev"] == pytest.approx(statistics.stdev([2, 4, 4, 4, 5, 5, 7, 9]))


def test_aggregation_of_other_values() -> None:
    texts = tl.aggregate_values(["b", "a", "b"], ALL)
    assert (texts["totalCount"], texts["distinctCount"], texts["min"], texts["max"]) == (
        3, 2, "a", "b")
    assert texts["sum"] is texts["avg"] is texts["stddev"] is None
    flags = tl.aggregate_values([True, False, True, True], ("sum", "avg", "min", "max"))
    assert flags == {"sum": 3, "avg": 0.75, "min": 0, "max": 1}
    objects = tl.aggregate_values([{"a": 1, "b": 2}, {"b": 2, "a": 1}, [1]], ALL)
    assert (objects["distinctCount"], objects["min"], objects["sum"]) == (2, None, None)
    # 1 and 1.0 are one value, True is another
    assert tl.aggregate_values([1, 1.0, True], ("distinctCount",)) == {"distinctCount": 2}


finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=50))
def test_aggregation_matches_the_statistics_module(values: list[float]) -> None:
    result = tl.aggregate_values(values, ALL)
    assert result["sum"] == pytest.approx(math.fsum(values), abs=1e-6)
    assert result["avg"] == pytest.approx(statistics.fmean(values), abs=1e-6)
    assert (result["min"], result["max"]) == (min(values), max(values))
    assert result["distinctCount"] == len(set(values))
    expected = statistics.stdev(values) if len(values) > 1 else 0.0
    assert result["stddev"] == pytest.approx(expected, rel=1e-6, abs=1e-6)


@given(st.lists(finite, min_size=2, max_size=50), st.integers(0, 49))
def test_stddev_does_not_depend_on_the_shift(values: list[float], pick: int) -> None:
    shift = values[pick % len(values)]
    shifted = tl.stddev(len(values), math.fsum(v - shift for v in values),
                        math.fsum((v - shift) ** 2 for v in values))
    assert shifted == pytest.approx(statistics.stdev(values), rel=1e-6, abs=1e-6)


def test_fixed_buckets_are_arithmetic() -> None:
    buckets = tl.Buckets.build(T0, T0 + 86400, tl.Duration(0, 3600))
    assert buckets.index(T0) == 0
    assert buckets.index(T0 + 3599.9) == 0
    assert buckets.index(T0 + 3600) == 1
    assert buckets.span(2) == (T0 + 7200, T0 + 10800)
    whole = tl.Buckets.build(T0, T0 + 500, None)
    assert whole.index(T0 + 499) == 0
    assert whole.span(0) == (T0, T0 + 500)


def test_calendar_buckets_follow_months() -> None:
    buckets = tl.Buckets.build(T0, datetime(2026, 3, 15, tzinfo=UTC).timestamp(),
                               tl.Duration(months=1))
    march = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    assert buckets.index(march - 1) == 1
    assert buckets.index(march) == 2
    assert buckets.span(1) == (datetime(2026, 2, 1, tzinfo=UTC).timestamp(), march)
    with pytest.raises(BadRequestData, match="periods"):
        tl.Buckets.build(T0, T0 + 400 * 86400 * 31, tl.Duration(months=1), max_buckets=100)


def test_rows_aggregate_per_dataset_and_bucket() -> None:
    rows = [row(1, T0, 1), row(2, T0 + 10, 3), row(3, T0 + 3700, 5),
            row(4, T0 + 20, 100, ds="urn:gps")]
    buckets = tl.Buckets.build(T0, T0 + 7200, tl.Duration(0, 3600))
    out = tl.aggregate_rows(rows, buckets, ("avg", "totalCount"))
    assert [(b.dataset_id, b.start, dict(b.values)) for b in out] == [
        ("", T0, {"avg": 2.0, "totalCount": 2}),
        ("", T0 + 3600, {"avg": 5.0, "totalCount": 1}),
        ("urn:gps", T0, {"avg": 100.0, "totalCount": 1}),
    ]


# -- payloads -----------------------------------------------------------------------------------


def test_temporal_payload_keeps_every_instance() -> None:
    parsed = tl.parse_temporal_entity({
        "id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle",
        "speed": [{"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00Z"},
                  {"value": 2, "observedAt": "2026-01-01T01:00:00Z"}],
        "brand": {"type": "Property", "value": "X"},
    }, TERMS)
    assert parsed["type"] == [DEFAULT_VOCAB + "Vehicle"]
    assert [i["value"] for i in parsed["attrs"][SPEED]] == [1, 2]
    assert parsed["attrs"][DEFAULT_VOCAB + "brand"][0]["value"] == "X"
    instance = parsed["attrs"][SPEED][0]
    assert tl.instance_moment(instance, "x") == "2026-01-01T00:00:00.000000Z"
    assert tl.instance_moment({"value": 1}, "now") == "now"


@pytest.mark.parametrize("body", [
    {"type": "Vehicle"},
    {"id": "urn:ngsi-ld:Vehicle:1", "speed": [1, 2]},
    {"id": "urn:ngsi-ld:Vehicle:1", "speed": []},
    {"id": "urn:ngsi-ld:Vehicle:1", "speed": {"type": "Property"}},
    ["not", "an", "object"],
])
def test_bad_temporal_payloads(body: Any) -> None:
    with pytest.raises(BadRequestData):
        tl.parse_temporal_entity(body, TERMS)


def test_instance_ids_name_history_rows() -> None:
    assert tl.instance_hid(tl.instance_urn(42)) == 42
    prefix = tl.INSTANCE_PREFIX
    for bad in (prefix + "x", "urn:other:1", "42", prefix + "\u00b2", prefix + "9" * 30):
        with pytest.raises(BadRequestData):
            tl.instance_hid(bad)


# -- pagination ---------------------------------------------------------------------------------


def test_a_cut_series_cuts_the_others_at_the_same_instant() -> None:
    query = tl.parse_temporal_query()
    full = tl.Series([row(1, T0 + 5, 1), row(2, T0 + 50, 2)])
    cut = tl.Series([row(3, T0, 1), row(4, T0 + 10, 2)], truncated=True)
    clipped, page = tl.paginate([{"a": full, "b": cut}], query)
    assert page is not None
    assert [r.hid for r in clipped[0]["a"].items] == [1]
    assert (page.start, page.end, page.size) == (T0, T0 + 10, None)
    assert page.content_range() == ("date-time 2026-01-01T00:00:00.000000Z-"
                                    "2026-01-01T00:00:10.000000Z/*")


def test_last_n_pages_count_back_from_the_end() -> None:
    query = tl.parse_temporal_query(last_n=5, timerel="before", time_at="2026-01-02T00:00:00Z")
    full = tl.Series([row(1, T0 + 5, 1), row(2, T0 + 50, 2)])
    cut = tl.Series([row(3, T0 + 20, 1), row(4, T0 + 30, 2)], truncated=True)
    clipped, page = tl.paginate([{"a": full, "b": cut}], query)
    assert page is not None
    assert [r.hid for r in clipped[0]["a"].items] == [2]
    assert (page.start, page.end, page.size) == (T0 + 86400, T0 + 20, 5)


def test_nothing_cut_means_no_page() -> None:
    series = {"a": tl.Series([row(1, T0, 1)])}
    clipped, page = tl.paginate([series], tl.parse_temporal_query())
    assert page is None
    assert clipped == [series]


# -- rendering ----------------------------------------------------------------------------------

ENTITY = {"id": "urn:ngsi-ld:Vehicle:1", "type": [DEFAULT_VOCAB + "Vehicle"],
          "createdAt": "2026-01-01T00:00:00.000000Z", "modifiedAt": "2026-01-01T00:00:01.000000Z",
          "attrs": {}}


def test_normalized_form_lists_instances_with_ids() -> None:
    query = tl.parse_temporal_query()
    rows = [row(7, T0, 1, observedAt="2026-01-01T00:00:00.000000Z", unitCode="KMH")]
    out = tl.render_temporal_entity(ENTITY, {SPEED: tl.Series(rows)}, TERMS, query)
    assert out == {"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": [
        {"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00.000000Z",
         "unitCode": "KMH", "instanceId": "urn:ngsi-ld:attribute-instance:7"}]}


def test_system_time_properties_and_deletions_are_shown() -> None:
    query = tl.parse_temporal_query(timeproperty="deletedAt", options="sysAttrs")
    deletion = tl.HistoryRow(3, "urn:gps", T0, {"type": "Relationship",
                                                "deletedAt": "2026-01-01T00:00:00.000000Z"},
                             deleted=True)
    out = tl.render_temporal_entity(ENTITY, {SPEED: tl.Series([deletion])}, TERMS, query)
    assert out["createdAt"] == ENTITY["createdAt"]
    assert out["speed"] == [{"type": "Relationship", "object": "urn:ngsi-ld:null",
                             "datasetId": "urn:gps", "deletedAt": "2026-01-01T00:00:00.000000Z",
                             "instanceId": "urn:ngsi-ld:attribute-instance:3"}]
    modified = tl.parse_temporal_query(timeproperty="modifiedAt")
    out = tl.render_temporal_entity(ENTITY, {SPEED: tl.Series([row(1, T0 + 1, 5)])}, TERMS,
                                    modified)
    assert out["speed"][0]["modifiedAt"] == "2026-01-01T00:00:01.000000Z"


def test_temporal_values_form_per_attribute_type_and_dataset() -> None:
    query = tl.parse_temporal_query(options="temporalValues")
    rel = tl.Series([row(1, T0, "urn:a", "Relationship"), row(2, T0 + 1, "urn:b",
                                                               "Relationship")],
                    kind="Relationship")
    speeds = tl.Series([row(3, T0, 1), row(4, T0, 2, ds="urn:gps")])
    vocab = tl.Series([row(5, T0, DEFAULT_VOCAB + "Sunny", "VocabProperty")],
                      kind="VocabProperty")
    out = tl.render_temporal_entity(ENTITY, {DEFAULT_VOCAB + "parked": rel, SPEED: speeds,
                                             DEFAULT_VOCAB + "sky": vocab}, TERMS, query)
    assert out["parked"] == {"type": "Relationship", "objects": [
        ["urn:a", "2026-01-01T00:00:00.000000Z"], ["urn:b", "2026-01-01T00:00:01.000000Z"]]}
    assert out["speed"] == [
        {"type": "Property", "values": [[1, "2026-01-01T00:00:00.000000Z"]]},
        {"type": "Property", "values": [[2, "2026-01-01T00:00:00.000000Z"]],
         "datasetId": "urn:gps"},
    ]
    assert out["sky"]["vocabs"] == [["Sunny", "2026-01-01T00:00:00.000000Z"]]


def test_aggregated_form_gives_value_start_end() -> None:
    query = tl.parse_temporal_query(options="aggregatedValues", aggr_methods="max,avg")
    buckets = [tl.Bucket("", T0, T0 + 3600, {"max": 9.0, "avg": 4.5})]
    out = tl.render_temporal_entity(ENTITY, {SPEED: tl.Series(buckets), DEFAULT_VOCAB + "x":
                                             tl.Series([])}, TERMS, query)
    assert out == {"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": {
        "type": "Property",
        "max": [[9.0, "2026-01-01T00:00:00.000000Z", "2026-01-01T01:00:00.000000Z"]],
        "avg": [[4.5, "2026-01-01T00:00:00.000000Z", "2026-01-01T01:00:00.000000Z"]],
    }}
