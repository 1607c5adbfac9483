"""Subscriptions, pure part: payload checks, the stored-record round trip, PATCH, which changes
trigger a notification, and what a notification shows."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.ngsild.errors import BadRequestData, NgsiLdError, OperationNotSupported
from cityhub.ngsild.model import DEFAULT_VOCAB, Entity
from cityhub.ngsild.payload import format_datetime
from cityhub.ngsild.subscription import (
    DEFAULT_TRIGGERS,
    DeliveryState,
    Subscription,
    apply_patch,
    entity_matches,
    from_record,
    matches,
    notification_body,
    notification_entity,
    parse_subscription,
    render_subscription,
    to_record,
)
from tests.store.helpers import TERMS, entity, iri

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
AT = format_datetime(NOW)


class OtherTerms:
    """A second @context: every term lives in another vocabulary."""

    def expand_term(self, term: str) -> str:
        return term if ":" in term else "https://example.org/other/" + term

    def compact_iri(self, iri_: str) -> str:
        return iri_.removeprefix("https://example.org/other/")


@dataclass(frozen=True)
class Change:
    operation: str
    attrs: tuple[str, ...]
    entity: Entity | None
    previous: Entity | None
    at: str = AT


def payload(**members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": "http://receiver.example/notify"}},
    }
    for key, value in members.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def parse(**members: Any) -> Subscription:
    return parse_subscription(payload(**members), TERMS, context=None, now=NOW,
                              default_id="urn:ngsi-ld:Subscription:s1")


def car(speed: float = 50.0, n: int = 1, **extra: Any) -> Entity:
    return entity({"id": f"urn:ngsi-ld:Vehicle:{n}", "type": "Vehicle",
                   "speed": {"type": "Property", "value": speed},
                   "location": {"type": "GeoProperty",
                                "value": {"type": "Point", "coordinates": [2.0, 2.0]}},
                   **extra})


def created(e: Entity) -> Change:
    return Change("create", tuple(e["attrs"]), e, None)


def updated(before: Entity, after: Entity) -> Change:
    changed = tuple(
        a for a in {*before["attrs"], *after["attrs"]}
        if before["attrs"].get(a) != after["attrs"].get(a)
    )
    return Change("update", changed, after, before)


def with_speed(e: Entity, speed: float) -> Entity:
    new = copy.deepcopy(e)
    new["attrs"][iri("speed")][0]["value"] = speed
    return new


# -- parsing ---------------------------------------------------------------------------------


def test_a_minimal_subscription_gets_the_spec_defaults() -> None:
    sub = parse()
    assert sub.id == "urn:ngsi-ld:Subscription:s1"
    assert sub.triggers == DEFAULT_TRIGGERS == {"attributeCreated", "attributeUpdated"}
    assert sub.is_active
    assert sub.expires_at is None
    assert sub.notification.form == "normalized"
    assert sub.notification.endpoint.accept == "application/json"
    assert sub.watched is None
    assert sub.q is None


def test_names_are_expanded_with_the_request_context() -> None:
    sub = parse(watchedAttributes=["speed"], q="speed>10",
                notification={"attributes": ["speed"], "format": "keyValues",
                              "endpoint": {"uri": "http://r.example/n"}})
    assert sub.watched == {DEFAULT_VOCAB + "speed"}
    assert sub.notification.attributes == {DEFAULT_VOCAB + "speed"}
    assert sub.notification.form == "keyValues"
    assert sub.terms["Vehicle"] == DEFAULT_VOCAB + "Vehicle"


def test_a_given_id_is_kept_and_a_missing_one_is_generated() -> None:
    assert parse(id="urn:ngsi-ld:Subscription:mine").id == "urn:ngsi-ld:Subscription:mine"
    generated = parse_subscription(payload(), TERMS, context=None, now=NOW)
    assert generated.id.startswith("urn:ngsi-ld:Subscription:")


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ({"type": "Subscriptions"}, "type"),
        ({"entities": None}, "'entities' or 'watchedAttributes'"),
        ({"entities": []}, "entities"),
        ({"entities": [{"id": "urn:a:1"}]}, "needs a type"),
        ({"entities": [{"type": 42}]}, "needs a type"),
        ({"entities": [{"type": "A;;B"}]}, ""),
        ({"entities": [{"type": "(A|B"}]}, ""),
        ({"entities": [{"type": "Vehicle", "id": "not a uri"}]}, "absolute URI"),
        ({"entities": [{"type": "Vehicle", "idPattern": "(unclosed"}]}, "regular expression"),
        ({"entities": [{"type": "Vehicle", "colour": "red"}]}, "unknown member"),
        ({"q": "speed>>10"}, ""),
        ({"q": ""}, "q must be"),
        ({"scopeQ": "no-slash"}, ""),
        ({"geoQ": {"georel": "nearby", "geometry": "Point", "coordinates": [1, 2]}}, "georel"),
        ({"geoQ": {"georel": "within", "geometry": "Point"}}, "coordinates"),
        ({"geoQ": "near"}, "geoQ"),
        ({"notification": None}, "notification"),
        ({"notification": {"format": "normalized"}}, "endpoint"),
        ({"notification": {"endpoint": {}}}, "uri"),
        ({"notification": {"endpoint": {"uri": "/relative"}}}, "uri"),
        ({"notification": {"endpoint": {"uri": "http://r.example", "accept": "text/csv"}}},
         "accept"),
        ({"notification": {"format": "xml", "endpoint": {"uri": "http://r.example"}}}, "format"),
        ({"notification": {"format": "keyValues", "showChanges": True,
                           "endpoint": {"uri": "http://r.example"}}}, "showChanges"),
        ({"notification": {"endpoint": {"uri": "http://r.example",
                                        "receiverInfo": [{"key": "Link", "value": "x"}]}}},
         "receiverInfo"),
        ({"notification": {"endpoint": {"uri": "http://r.example",
                                        "receiverInfo": [{"key": "X-A", "value": "a\r\nb"}]}}},
         "line break"),
        ({"expiresAt": "2025-12-31T00:00:00Z"}, "not in the future"),
        ({"expiresAt": "tomorrow"}, "expiresAt"),
        ({"throttling": -1}, "throttling"),
        ({"throttling": True}, "throttling"),
        ({"timeInterval": 10, "watchedAttributes": ["speed"]}, "timeInterval"),
        ({"timeInterval": 10, "throttling": 5}, "timeInterval"),
        ({"timeInterval": 10, "entities": None, "watchedAttributes": ["speed"]}, "timeInterval"),
        ({"watchedAttributes": []}, "watchedAttributes"),
        ({"watchedAttributes": ["bad name"]}, "watchedAttributes"),
        ({"notificationTrigger": ["entityChanged"]}, "notificationTrigger"),
        ({"isActive": "yes"}, "isActive"),
        ({"colour": "red"}, "unknown subscription member"),
        ({"id": "sub-1"}, "absolute URI"),
        ({"jsonldContext": "not a url"}, "jsonldContext"),
    ],
)
def test_bad_payloads_are_bad_request_data(members: dict[str, Any], fragment: str) -> None:
    with pytest.raises(BadRequestData) as caught:
        parse(**members)
    assert fragment in caught.value.detail


@pytest.mark.parametrize(
    "members",
    [
        {"notification": {"endpoint": {"uri": "mqtt://broker.example/topic"}}},
        {"csf": "x==1"},
    ],
)
def test_unsupported_features_say_so(members: dict[str, Any]) -> None:
    with pytest.raises(OperationNotSupported):
        parse(**members)


def test_read_only_members_sent_back_are_ignored() -> None:
    sub = parse(status="active", createdAt=AT,
                notification={"endpoint": {"uri": "http://r.example"}, "timesSent": 3})
    assert "status" not in sub.body
    assert "createdAt" not in sub.body
    assert "timesSent" not in sub.body["notification"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=10,
)
_MEMBERS = st.sampled_from(["entities", "watchedAttributes", "q", "geoQ", "notification",
                            "expiresAt", "throttling", "timeInterval", "isActive",
                            "notificationTrigger", "scopeQ", "lang", "id"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_MEMBERS, _JSON, max_size=4))
def test_any_json_is_accepted_or_refused_with_an_ngsild_error(members: dict[str, Any]) -> None:
    try:
        sub = parse(**{k: v for k, v in members.items() if v is not None})
    except NgsiLdError:
        return
    again = from_record(to_record(sub))
    assert again == sub


@settings(max_examples=100, deadline=None)
@given(
    q=st.sampled_from([None, "speed>10", "speed==1..5|brand==\"x\"", "a.b<3;!c"]),
    watched=st.sampled_from([None, ["speed"], ["speed", "brand"]]),
    throttling=st.sampled_from([None, 1, 2.5]),
    triggers=st.sampled_from([None, ["entityCreated"], ["attributeUpdated", "entityDeleted"]]),
)
def test_the_stored_record_parses_back_to_the_same_subscription(
    q: str | None, watched: list[str] | None, throttling: float | None,
    triggers: list[str] | None,
) -> None:
    sub = parse(q=q, watchedAttributes=watched, throttling=throttling,
                notificationTrigger=triggers)
    assert from_record(to_record(sub)) == sub


# -- PATCH -----------------------------------------------------------------------------------


def test_patch_replaces_members_and_null_removes_them() -> None:
    sub = parse(q="speed>10", throttling=5)
    new = apply_patch(sub, {"q": "speed<3", "throttling": None}, TERMS, now=NOW)
    assert new.body["q"] == "speed<3"
    assert "throttling" not in new.body
    assert new.throttling is None
    assert entity_matches(new, car(speed=1))
    assert not entity_matches(new, car(speed=50))


def test_patch_keeps_known_names_and_expands_new_ones_with_its_context() -> None:
    sub = parse(watchedAttributes=["speed"])
    new = apply_patch(sub, {"notification": {"attributes": ["speed", "brand"],
                                             "endpoint": {"uri": "http://r.example"}}},
                      OtherTerms(), now=NOW)
    assert new.watched == {DEFAULT_VOCAB + "speed"}
    assert new.notification.attributes == {DEFAULT_VOCAB + "speed",
                                           "https://example.org/other/brand"}


@pytest.mark.parametrize(
    "patch",
    [{"id": "urn:ngsi-ld:Subscription:other"}, {"type": "Entity"}, {}, [],
     {"expiresAt": "2020-01-01T00:00:00Z"}, {"q": "speed>>"}],
)
def test_bad_patches_are_refused(patch: Any) -> None:
    with pytest.raises(BadRequestData):
        apply_patch(parse(), patch, TERMS, now=NOW)


def test_jsonld_context_sets_the_notification_context() -> None:
    sub = parse_subscription(payload(), TERMS, context="https://ctx.example/a.jsonld", now=NOW)
    assert sub.context == "https://ctx.example/a.jsonld"
    other = apply_patch(sub, {"jsonldContext": "https://ctx.example/b.jsonld"}, TERMS, now=NOW)
    assert other.context == "https://ctx.example/b.jsonld"
    back = apply_patch(other, {"jsonldContext": None}, TERMS, now=NOW)
    assert back.context == "https://ctx.example/a.jsonld"


# -- matching --------------------------------------------------------------------------------


def test_default_triggers_fire_on_creation_and_update_but_not_deletion() -> None:
    sub = parse()
    before = car(10)
    assert matches(sub, created(before))
    assert matches(sub, updated(before, with_speed(before, 20)))
    assert not matches(sub, Change("delete", tuple(before["attrs"]), None, before))


def test_watched_attributes_limit_what_triggers() -> None:
    sub = parse(watchedAttributes=["speed"])
    before = car(10, brand={"type": "Property", "value": "x"})
    after_brand = copy.deepcopy(before)
    after_brand["attrs"][iri("brand")][0]["value"] = "y"
    assert matches(sub, updated(before, with_speed(before, 11)))
    assert not matches(sub, updated(before, after_brand))
    assert not matches(sub, created(entity({"id": "urn:ngsi-ld:Vehicle:9", "type": "Vehicle",
                                            "brand": "x"})))


def test_q_is_evaluated_on_the_entity_after_the_change() -> None:
    sub = parse(q="speed>30")
    before = car(10)
    assert not matches(sub, updated(before, with_speed(before, 20)))
    assert matches(sub, updated(before, with_speed(before, 40)))


@pytest.mark.parametrize(
    ("triggers", "expected"),
    [
        (["entityCreated"], {"create"}),
        (["entityUpdated"], {"update", "add", "remove"}),
        (["entityDeleted"], {"delete"}),
        (["attributeCreated"], {"create", "add"}),
        (["attributeUpdated"], {"update"}),
        (["attributeDeleted"], {"remove"}),
    ],
)
def test_each_notification_trigger(triggers: list[str], expected: set[str]) -> None:
    sub = parse(notificationTrigger=triggers)
    base = car(10)
    added = copy.deepcopy(base)
    added["attrs"][iri("brand")] = [{"type": "Property", "value": "x"}]
    removed = copy.deepcopy(base)
    del removed["attrs"][iri("speed")]
    changes = {
        "create": created(base),
        "update": updated(base, with_speed(base, 11)),
        "add": updated(base, added),
        "remove": updated(base, removed),
        "delete": Change("delete", tuple(base["attrs"]), None, base),
    }
    assert {name for name, change in changes.items() if matches(sub, change)} == expected


def test_entity_selectors_by_id_pattern_and_type_expression() -> None:
    by_id = parse(entities=[{"type": "Vehicle", "id": "urn:ngsi-ld:Vehicle:2"}])
    by_pattern = parse(entities=[{"type": "Vehicle", "idPattern": "Vehicle:[13]$"}])
    by_types = parse(entities=[{"type": "Bus|Vehicle"}])
    by_both = parse(entities=[{"type": "Bus;Vehicle"}])
    one, two = car(n=1), car(n=2)
    assert [entity_matches(by_id, e) for e in (one, two)] == [False, True]
    assert [entity_matches(by_pattern, e) for e in (one, two)] == [True, False]
    assert entity_matches(by_types, one)
    assert not entity_matches(by_both, one)
    bus = copy.deepcopy(one)
    bus["type"] = sorted([iri("Bus"), iri("Vehicle")])
    assert entity_matches(by_both, bus)


def test_geo_q_filters_by_location() -> None:
    near = parse(geoQ={"georel": "within", "geometry": "Polygon",
                       "coordinates": [[[0, 0], [5, 0], [5, 5], [0, 5], [0, 0]]]})
    far = parse(geoQ={"georel": "within", "geometry": "Polygon",
                      "coordinates": [[[10, 10], [15, 10], [15, 15], [10, 15], [10, 10]]]})
    assert matches(near, created(car()))
    assert not matches(far, created(car()))


def test_inactive_expired_and_periodic_subscriptions_never_match() -> None:
    change = created(car())
    assert not matches(parse(isActive=False), change)
    expiring = parse(expiresAt=format_datetime(NOW + timedelta(seconds=5)))
    assert matches(expiring, change)
    later = Change(change.operation, change.attrs, change.entity, None,
                   format_datetime(NOW + timedelta(seconds=6)))
    assert not matches(expiring, later)
    assert not matches(parse(timeInterval=10), change)


def test_entity_updated_fires_on_a_type_change_alone() -> None:
    base = car()
    retyped = copy.deepcopy(base)
    retyped["type"] = sorted([iri("Vehicle"), iri("Car")])
    change = Change("update", (), retyped, base)
    assert matches(parse(notificationTrigger=["entityUpdated"]), change)
    assert not matches(parse(), change)


# -- rendering -------------------------------------------------------------------------------


def test_render_shows_the_payload_defaults_and_delivery_status() -> None:
    sub = parse(q="speed>1")
    state = DeliveryState(AT, AT, times_sent=3, times_failed=1, last_notification=AT,
                          last_success=AT, last_failure=AT, status="ok")
    shown = render_subscription(sub, state, NOW)
    assert shown["id"] == sub.id
    assert shown["type"] == "Subscription"
    assert shown["q"] == "speed>1"
    assert shown["status"] == "active"
    assert shown["isActive"]
    notification = shown["notification"]
    assert notification["timesSent"] == 3
    assert notification["timesFailed"] == 1
    assert notification["status"] == "ok"
    assert notification["lastSuccess"] == AT
    assert notification["format"] == "normalized"
    assert notification["endpoint"]["accept"] == "application/json"
    assert render_subscription(parse(isActive=False), state, NOW)["status"] == "paused"
    expiring = parse(expiresAt=format_datetime(NOW + timedelta(seconds=1)))
    assert render_subscription(expiring, state, NOW + timedelta(seconds=2))["status"] == "expired"


def test_notification_entities_follow_format_and_attributes() -> None:
    sub = parse(notification={"format": "keyValues", "attributes": ["speed"],
                              "endpoint": {"uri": "http://r.example"}})
    shown = notification_entity(sub, "update", car(12), None, AT, TERMS)
    assert shown == {"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": 12}


def test_a_deleted_entity_is_shown_with_deleted_at() -> None:
    shown = notification_entity(parse(), "delete", car(), None, AT, TERMS)
    assert shown == {"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "deletedAt": AT}


def test_show_changes_adds_the_previous_value() -> None:
    sub = parse(notification={"showChanges": True, "endpoint": {"uri": "http://r.example"}})
    before = car(10)
    shown = notification_entity(sub, "update", with_speed(before, 20), before, AT, TERMS)
    assert shown["speed"] == {"type": "Property", "value": 20, "previousValue": 10}
    assert "previousValue" not in shown["location"]


def test_notification_body_members() -> None:
    body = notification_body("urn:s", "urn:ngsi-ld:Notification:1", NOW, [{"id": "urn:a"}])
    assert body == {"id": "urn:ngsi-ld:Notification:1", "type": "Notification",
                    "subscriptionId": "urn:s", "notifiedAt": AT, "data": [{"id": "urn:a"}]}
