"""Decoding and validation of device messages: any input is a Measurement or Rejected."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.devices.catalogue import CATALOGUE
from cityhub.devices.messages import Rejected, decode, message_id, validate
from cityhub.devices.registry import parse_topic, topic

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
AQ = CATALOGUE["AirQualityObserved"]


def check(raw: bytes, decoder: str = "json") -> object:
    return validate(decode(raw, decoder), AQ, "", "aq", raw, NOW)


def test_a_good_envelope() -> None:
    raw = orjson.dumps({"id": "m1", "observedAt": "2026-05-01T08:00:00+02:00",
                        "values": {"pm25": 12, "no2": 30.5}})
    measurement = check(raw)
    assert measurement.values == {"pm25": 12.0, "no2": 30.5}  # type: ignore[attr-defined]
    assert measurement.observed_at == "2026-05-01T06:00:00.000000Z"  # type: ignore[attr-defined]


def test_kv_decoder_and_default_id() -> None:
    raw = b"pm25=12.5;no2=31"
    measurement = check(raw, "kv")
    assert measurement.message_id == message_id("aq", raw)  # type: ignore[attr-defined]
    assert measurement.observed_at.startswith("2026-05-01T12:00:00")  # type: ignore[attr-defined]


@pytest.mark.parametrize(("raw", "reason"), [
    (b"[1]", "not a JSON object"),
    (orjson.dumps({"values": {"pm25": True}}), "finite number"),
    (orjson.dumps({"values": {"pm25": 1e9}}), "outside"),
    (orjson.dumps({"values": {"x": 1}}), "has no attribute"),
    (orjson.dumps({"values": {"pm25": 1}, "observedAt": "2027-01-01T00:00:00Z"}), "future"),
    (orjson.dumps({"values": {"pm25": 1}, "observedAt": "2026-01-01T00:00:00"}), "time zone"),
    (orjson.dumps({"values": {}}), "no values"),
])
def test_refusals_name_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        check(raw)


@given(st.binary(max_size=400))
def test_any_bytes_are_accepted_or_rejected(raw: bytes) -> None:
    for decoder in ("json", "kv"):
        try:
            check(raw, decoder)
        except Rejected as refused:
            reason = refused.reason
            assert reason


@given(st.dictionaries(st.text(max_size=8), st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3), max_leaves=8),
    max_size=5))
def test_any_json_object_is_accepted_or_rejected(envelope: dict[str, object]) -> None:
    try:
        validate(envelope, AQ, "", "aq", b"", NOW)
    except Rejected as refused:
        reason = refused.reason
        assert reason


def test_topic_scheme_round_trips() -> None:
    assert parse_topic(topic("", "aq-1")) == ("", "aq-1")
    assert parse_topic(topic("city", "aq-1")) == ("city", "aq-1")
    assert parse_topic("cityhub/city/aq-1/alert") is None
    assert parse_topic("other/city/aq-1/up") is None
