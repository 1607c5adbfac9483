"""NGSI-LD subscriptions (ETSI GS CIM 009, 5.2.12): parse and check a payload into the internal,
expanded form, render it back with its status, decide whether an entity change triggers it,
and render the entities a notification carries. Pure: no I/O.

A subscription keeps the payload as the client sent it (compact terms) together with the
term -> IRI map its parsing used, so it can be parsed again anywhere (another hub process, the
write path) without resolving its @context: `to_record`/`from_record` are that round trip.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cityhub.ngsild import geoquery
from cityhub.ngsild.errors import BadRequestData, OperationNotSupported
from cityhub.ngsild.model import VALUE_MEMBER, Entity
from cityhub.ngsild.payload import check_name, format_datetime, is_uri, parse_datetime
from cityhub.ngsild.query import (
    QExpr,
    ScopeExpr,
    TypeExpr,
    expand,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    scope_matches,
    type_matches,
)
from cityhub.ngsild.query import matches as q_matches
from cityhub.ngsild.render import Form, RenderOptions, render_entity
from cityhub.ngsild.terms import Terms

ENTITY_TRIGGERS = frozenset({"entityCreated", "entityUpdated", "entityDeleted"})
ATTRIBUTE_TRIGGERS = frozenset({"attributeCreated", "attributeUpdated", "attributeDeleted"})
DEFAULT_TRIGGERS = frozenset({"attributeCreated", "attributeUpdated"})
FORMATS: dict[str, Form] = {
    "normalized": "normalized",
    "concise": "concise",
    "keyValues": "keyValues",
    "simplified": "keyValues",
}
ACCEPTS = ("application/json", "application/ld+json", "application/geo+json")
_MEMBERS = frozenset({
    "id", "type", "subscriptionName", "description", "entities", "watchedAttributes",
    "notificationTrigger", "q", "geoQ", "scopeQ", "lang", "isActive", "notification",
    "expiresAt", "throttling", "timeInterval", "jsonldContext",
})
_UNSUPPORTED = frozenset({"csf", "temporalQ"})
# Members the broker fills in; a client may send them back (e.g. after a GET), they are dropped.
_READ_ONLY = frozenset({"status", "createdAt", "modifiedAt", "deletedAt", "@context"})
_NOTIFICATION_MEMBERS = frozenset({"attributes", "format", "sysAttrs", "showChanges", "endpoint"})
_NOTIFICATION_READ_ONLY = frozenset({
    "status", "timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure",
})
_ENDPOINT_MEMBERS = frozenset({"uri", "accept", "timeout", "cooldown", "receiverInfo",
                               "notifierInfo"})
# HTTP header names a receiverInfo key may not set: the broker writes these itself.
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "link", "ngsild-tenant", "host"})
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class EntityChange(Protocol):
    """What `matches` needs from a store change (cityhub.store.port.Change has these)."""

    @property
    def operation(self) -> str: ...  # "create" | "update" | "delete"

    @property
    def attrs(self) -> tuple[str, ...]: ...

    @property
    def entity(self) -> Entity | None: ...

    @property
    def previous(self) -> Entity | None: ...

    @property
    def at(self) -> str: ...


@dataclass(frozen=True)
class EntitySelector:
    """One member of `entities`: `id` wins over `idPattern`; `types` is an expanded expression."""

    types: TypeExpr
    id: str | None = None
    id_pattern: str | None = None

    def matches(self, entity: Entity) -> bool:
        if self.id is not None:
            if entity["id"] != self.id:
                return False
        elif self.id_pattern is not None and re.search(self.id_pattern, entity["id"]) is None:
            return False
        return type_matches(self.types, entity)


@dataclass(frozen=True)
class Endpoint:
    uri: str
    accept: str = "application/json"
    timeout_s: float | None = None
    receiver_info: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NotificationParams:
    endpoint: Endpoint
    attributes: frozenset[str] | None = None  # expanded
    form: Form = "normalized"
    sys_attrs: bool = False
    show_changes: bool = False


@dataclass(frozen=True)
class Subscription:
    """A checked subscription; `body` is the payload as sent, `terms` the names it expanded."""

    id: str
    body: Mapping[str, Any]
    terms: Mapping[str, str]
    request_context: Any  # the @context of the creation request
    entities: tuple[EntitySelector, ...]
    watched: frozenset[str] | None
    triggers: frozenset[str]
    q: QExpr | None
    scope_q: ScopeExpr | None
    geo_q: geoquery.GeoQuery | None
    is_active: bool
    expires_at: datetime | None
    throttling: float | None
    time_interval: float | None
    notification: NotificationParams
    lang: str | None

    @property
    def context(self) -> Any:
        """The @context notifications are compacted with: jsonldContext, else the creator's."""
        return self.body.get("jsonldContext", self.request_context)

    def is_live(self, now: datetime) -> bool:
        """Active and not expired: only then may it notify."""
        return self.is_active and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class DeliveryState:
    """What the broker records about a subscription (read-only members when rendered)."""

    created_at: str
    modified_at: str
    times_sent: int = 0
    times_failed: int = 0
    last_notification: str | None = None
    last_success: str | None = None
    last_failure: str | None = None
    status: str | None = None  # "ok" | "failed" once something was sent


class _RecordingTerms:
    """Expands with `known` first, else `fallback`; remembers every answer in `used`."""

    def __init__(self, known: Mapping[str, str], fallback: Terms | None) -> None:
        self.known = known
        self.fallback = fallback
        self.used: dict[str, str] = {}

    def expand_term(self, term: str) -> str:
        iri = self.known.get(term)
        if iri is None:
            if self.fallback is None:
                raise BadRequestData(f"the stored subscription has no IRI for {term!r}")
            iri = self.fallback.expand_term(term)
        self.used[term] = iri
        return iri

    def compact_iri(self, iri: str) -> str:
        return iri  # parsing never compacts


# -- parsing ---------------------------------------------------------------------------------


def new_subscription_id() -> str:
    return f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"


def parse_subscription(
    body: object, terms: Terms, *, context: Any, now: datetime, default_id: str | None = None
) -> Subscription:
    """Check a creation payload (without its @context) read with `terms` from `context`."""
    if not isinstance(body, dict):
        raise BadRequestData("a subscription must be a JSON object")
    if body.get("type") != "Subscription":
        raise BadRequestData(f"a subscription needs type 'Subscription', got {body.get('type')!r}")
    cleaned = {k: v for k, v in body.items() if k not in _READ_ONLY}
    cleaned.setdefault("id", default_id or new_subscription_id())
    recording = _RecordingTerms({}, terms)
    return _build(cleaned, recording, context, now, check_expiry=True)


def from_record(record: Mapping[str, Any]) -> Subscription:
    """A subscription back from `to_record` (no @context is resolved, no clock is read)."""
    recording = _RecordingTerms(record["terms"], None)
    return _build(dict(record["body"]), recording, record["context"], None, check_expiry=False)


def to_record(subscription: Subscription) -> dict[str, Any]:
    return {"body": dict(subscription.body), "terms": dict(subscription.terms),
            "context": subscription.request_context}


def apply_patch(
    subscription: Subscription, patch: object, terms: Terms, *, now: datetime
) -> Subscription:
    """Update (5.8.2): each member of `patch` replaces the stored one, `null` removes it.

    Names already known keep their IRIs; new names are expanded with `terms` (the patch
    request's @context). `jsonldContext` in the patch changes the context notifications use.
    """
    if not isinstance(patch, dict) or not patch:
        raise BadRequestData("a subscription update must be a non-empty JSON object")
    if patch.get("id", subscription.id) != subscription.id:
        raise BadRequestData("the id of a subscription cannot be changed")
    if patch.get("type", "Subscription") != "Subscription":
        raise BadRequestData("the type of a subscription is 'Subscription'")
    merged = dict(subscription.body)
    for key, value in patch.items():
        if key in _READ_ONLY:
            continue
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    recording = _RecordingTerms(subscription.terms, terms)
    return _build(merged, recording, subscription.request_context, now,
                  check_expiry="expiresAt" in patch)


def _build(
    body: dict[str, Any],
    terms: _RecordingTerms,
    context: Any,
    now: datetime | None,
    *,
    check_expiry: bool,
) -> Subscription:
    unsupported = sorted(_UNSUPPORTED & body.keys())
    if unsupported:
        raise OperationNotSupported(f"subscription member(s) not supported: {unsupported}")
    unknown = sorted(body.keys() - _MEMBERS)
    if unknown:
        raise BadRequestData(f"unknown subscription member(s): {', '.join(unknown)}")
    if isinstance(body.get("notification"), dict):
        body["notification"] = {k: v for k, v in body["notification"].items()
                                if k not in _NOTIFICATION_READ_ONLY}
    sub_id = body["id"]
    if not is_uri(sub_id):
        raise BadRequestData(f"subscription id must be an absolute URI, got {sub_id!r}")
    for member in ("subscriptionName", "description", "lang"):
        if member in body and not isinstance(body[member], str):
            raise BadRequestData(f"{member} must be a string")
    entities = _entities(body.get("entities"), terms)
    watched = _names(body.get("watchedAttributes"), "watchedAttributes", terms)
    time_interval = _positive(body.get("timeInterval"), "timeInterval")
    throttling = _positive(body.get("throttling"), "throttling")
    if not entities and watched is None:
        raise BadRequestData("a subscription needs 'entities' or 'watchedAttributes'")
    if time_interval is not None:
        if watched is not None:
            raise BadRequestData("timeInterval and watchedAttributes cannot be used together")
        if throttling is not None:
            raise BadRequestData("timeInterval and throttling cannot be used together")
        if not entities:
            raise BadRequestData("a subscription with timeInterval needs 'entities'")
    is_active = body.get("isActive", True)
    if not isinstance(is_active, bool):
        raise BadRequestData("isActive must be true or false")
    expires_at = None
    if "expiresAt" in body:
        expires_at = parse_datetime(body["expiresAt"], "expiresAt")
        if check_expiry and now is not None and expires_at <= now:
            raise BadRequestData(f"expiresAt {body['expiresAt']} is not in the future")
    if "jsonldContext" in body and not is_uri(body["jsonldContext"]):
        raise BadRequestData("jsonldContext must be the URL of a JSON-LD @context")
    return Subscription(
        id=sub_id,
        body=body,
        terms=terms.used,
        request_context=context,
        entities=entities,
        watched=watched,
        triggers=_triggers(body.get("notificationTrigger")),
        q=expand(parse_q(_text(body["q"], "q")), terms.expand_term) if "q" in body else None,
        scope_q=parse_scope_q(_text(body["scopeQ"], "scopeQ")) if "scopeQ" in body else None,
        geo_q=_geo_q(body.get("geoQ"), terms),
        is_active=is_active,
        expires_at=expires_at,
        throttling=throttling,
        time_interval=time_interval,
        notification=_notification(body.get("notification"), terms),
        lang=body.get("lang"),
    )


def _text(value: object, member: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{member} must be a non-empty string")
    return value


def _positive(value: object, member: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise BadRequestData(f"{member} must be a positive number of seconds, got {value!r}")
    return float(value)


def _names(value: object, member: str, terms: Terms) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise BadRequestData(f"{member} must be a non-empty list of attribute names")
    return frozenset(terms.expand_term(check_name(name, f"name in {member}")) for name in value)


def _entities(value: object, terms: Terms) -> tuple[EntitySelector, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise BadRequestData("entities must be a non-empty list of entity selectors")
    selectors = []
    for item in value:
        if not isinstance(item, dict):
            raise BadRequestData(f"an entity selector must be a JSON object, got {item!r}")
        unknown = sorted(item.keys() - {"id", "idPattern", "type"})
        if unknown:
            raise BadRequestData(f"unknown member(s) in an entity selector: {unknown}")
        if not isinstance(item.get("type"), str) or not item["type"]:
            raise BadRequestData(f"an entity selector needs a type (a string), got {item!r}")
        types = expand(parse_type_expr(item["type"]), terms.expand_term)
        entity_id = item.get("id")
        if entity_id is not None and not is_uri(entity_id):
            raise BadRequestData(f"entity selector id must be an absolute URI, got {entity_id!r}")
        pattern = item.get("idPattern")
        if pattern is not None:
            if not isinstance(pattern, str):
                raise BadRequestData("idPattern must be a string")
            try:
                re.compile(pattern)
            except re.error as error:
                raise BadRequestData(f"idPattern is not a valid regular expression: {error}"
                                     ) from None
        selectors.append(EntitySelector(types, entity_id, pattern))
    return tuple(selectors)


def _triggers(value: object) -> frozenset[str]:
    if value is None:
        return DEFAULT_TRIGGERS
    known = ENTITY_TRIGGERS | ATTRIBUTE_TRIGGERS
    names = value if isinstance(value, list) else []
    if not names or not all(isinstance(v, str) and v in known for v in names):
        raise BadRequestData(
            f"notificationTrigger must be a non-empty list of {sorted(known)}, got {value!r}"
        )
    return frozenset(names)


def _geo_q(value: object, terms: Terms) -> geoquery.GeoQuery | None:
    if value is None:
        return None
    query = geoquery.geoquery_from_json(value)
    return query.with_property(terms.expand_term(query.geoproperty))


def _notification(value: object, terms: Terms) -> NotificationParams:
    if not isinstance(value, dict):
        raise BadRequestData("a subscription needs a 'notification' object")
    unknown = sorted(value.keys() - _NOTIFICATION_MEMBERS - _NOTIFICATION_READ_ONLY)
    if unknown:
        raise BadRequestData(f"unknown member(s) in notification: {', '.join(unknown)}")
    form_name = value.get("format", "normalized")
    if form_name not in FORMATS:
        raise BadRequestData(f"notification.format must be one of {sorted(FORMATS)}")
    for flag in ("sysAttrs", "showChanges"):
        if not isinstance(value.get(flag, False), bool):
            raise BadRequestData(f"notification.{flag} must be true or false")
    if value.get("showChanges") and FORMATS[form_name] == "keyValues":
        raise BadRequestData("showChanges cannot be used with the keyValues format")
    return NotificationParams(
        endpoint=_endpoint(value.get("endpoint")),
        attributes=_names(value.get("attributes"), "notification.attributes", terms),
        form=FORMATS[form_name],
        sys_attrs=value.get("sysAttrs", False),
        show_changes=value.get("showChanges", False),
    )


def _endpoint(value: object) -> Endpoint:
    if not isinstance(value, dict):
        raise BadRequestData("notification.endpoint must be a JSON object")
    unknown = sorted(value.keys() - _ENDPOINT_MEMBERS)
    if unknown:
        raise BadRequestData(f"unknown member(s) in notification.endpoint: {unknown}")
    uri = value.get("uri")
    if not isinstance(uri, str) or not is_uri(uri):
        raise BadRequestData("notification.endpoint.uri must be an absolute URI")
    if not re.match(r"^https?://[^/\s]+", uri):
        raise OperationNotSupported(f"only http(s) notification endpoints are supported: {uri}")
    accept = value.get("accept", "application/json")
    if accept not in ACCEPTS:
        raise BadRequestData(f"notification.endpoint.accept must be one of {list(ACCEPTS)}")
    timeout = value.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise BadRequestData("notification.endpoint.timeout must be a positive number (ms)")
    return Endpoint(uri, accept, None if timeout is None else timeout / 1000.0,
                    _key_values(value.get("receiverInfo")))


def _key_values(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadRequestData("receiverInfo must be a list of {key, value} objects")
    pairs = []
    for item in value:
        if not (isinstance(item, dict) and item.keys() == {"key", "value"}
                and isinstance(item["key"], str) and isinstance(item["value"], str)):
            raise BadRequestData(f"receiverInfo items are {{key, value}} strings, got {item!r}")
        key = item["key"]
        if not _HEADER_NAME.match(key) or key.lower() in _RESERVED_HEADERS:
            raise BadRequestData(f"receiverInfo key {key!r} cannot be an HTTP header name here")
        if any(ch in item["value"] for ch in "\r\n\0"):
            raise BadRequestData(f"receiverInfo value of {key!r} has a line break")
        pairs.append((key, item["value"]))
    return tuple(pairs)


# -- rendering -------------------------------------------------------------------------------


def render_subscription(subscription: Subscription, state: DeliveryState, now: datetime
                        ) -> dict[str, Any]:
    """The subscription as GET returns it: the payload as sent, defaults and status members."""
    out: dict[str, Any] = {"id": subscription.id, "type": "Subscription"}
    out.update((k, v) for k, v in subscription.body.items() if k not in ("id", "type"))
    out["isActive"] = subscription.is_active
    if not subscription.is_active:
        out["status"] = "paused"
    elif subscription.expires_at is not None and subscription.expires_at <= now:
        out["status"] = "expired"
    else:
        out["status"] = "active"
    notification = dict(out["notification"])
    notification.setdefault("format", "normalized")
    notification["endpoint"] = {"accept": "application/json", **notification["endpoint"]}
    notification["timesSent"] = state.times_sent
    notification["timesFailed"] = state.times_failed
    for key, value in (("lastNotification", state.last_notification),
                       ("lastSuccess", state.last_success),
                       ("lastFailure", state.last_failure),
                       ("status", state.status)):
        if value is not None:
            notification[key] = value
    out["notification"] = notification
    out["createdAt"] = state.created_at
    out["modifiedAt"] = state.modified_at
    return out


# -- matching --------------------------------------------------------------------------------


def entity_matches(subscription: Subscription, entity: Entity) -> bool:
    """Whether an entity is one the subscription is about (selectors, q, scopeQ, geoQ)."""
    if subscription.entities and not any(s.matches(entity) for s in subscription.entities):
        return False
    if subscription.q is not None and not q_matches(subscription.q, entity):
        return False
    if subscription.scope_q is not None and not scope_matches(subscription.scope_q, entity):
        return False
    query = subscription.geo_q
    if query is not None:
        instances = entity["attrs"].get(query.geoproperty, [])
        if not any(i["type"] == "GeoProperty" and query.matches(i["value"]) for i in instances):
            return False
    return True


def matches(subscription: Subscription, change: EntityChange) -> bool:
    """Whether `change` triggers a notification (periodic subscriptions never do).

    Entity creation creates every attribute and deletion deletes every attribute, so the
    default triggers (attributeCreated, attributeUpdated) fire on creation but not on deletion.
    `entityCreated`/`entityDeleted` fire on any creation/deletion of a selected entity;
    the attribute triggers and `entityUpdated` only for watched attributes when those are given.
    For a deletion the filters look at the entity as it was.
    """
    if subscription.time_interval is not None:
        return False
    if not subscription.is_live(parse_datetime(change.at, "at")):
        return False
    if not _triggered(subscription, change):
        return False
    entity = change.entity if change.entity is not None else change.previous
    return entity is not None and entity_matches(subscription, entity)


def _triggered(subscription: Subscription, change: EntityChange) -> bool:
    triggers, watched = subscription.triggers, subscription.watched
    if change.operation == "create" and "entityCreated" in triggers:
        return True
    if change.operation == "delete":
        return "entityDeleted" in triggers
    before = set(change.previous["attrs"]) if change.previous is not None else set()
    after = set(change.entity["attrs"]) if change.entity is not None else set()
    kinds: set[str] = set()
    for iri in change.attrs:
        if watched is not None and iri not in watched:
            continue
        if iri not in before:
            kinds.add("attributeCreated")
        elif iri not in after:
            kinds.add("attributeDeleted")
        else:
            kinds.add("attributeUpdated")
    if change.operation == "update" and "entityUpdated" in triggers:
        # type or scope changes touch no attribute, yet update the entity
        return bool(kinds) or (watched is None and not change.attrs)
    return bool(kinds & triggers)


# -- notification content ----------------------------------------------------------------------


def notification_entity(
    subscription: Subscription,
    operation: str,
    entity: Entity,
    previous: Entity | None,
    at: str,
    terms: Terms,
) -> dict[str, Any]:
    """One item of a notification's `data`, compacted with `terms`.

    A deleted entity is shown as its id, type and deletedAt. With showChanges, each attribute
    whose single instance changed carries the previous value (`previousValue`, ...).
    """
    params = subscription.notification
    if operation == "delete":
        types = [terms.compact_iri(t) for t in entity.get("type", [])]
        return {"id": entity["id"], "type": types[0] if len(types) == 1 else types,
                "deletedAt": at}
    options = RenderOptions(form=params.form, sys_attrs=params.sys_attrs,
                            attrs=params.attributes, lang=subscription.lang)
    rendered = render_entity(entity, terms, options)
    if params.show_changes and previous is not None:
        _add_previous(rendered, entity, previous, terms)
    return rendered


def _add_previous(rendered: dict[str, Any], entity: Entity, previous: Entity, terms: Terms
                  ) -> None:
    for iri, instances in entity["attrs"].items():
        name = terms.compact_iri(iri)
        old = previous["attrs"].get(iri)
        if name not in rendered or old is None or len(instances) != 1 or len(old) != 1:
            continue
        member = VALUE_MEMBER[old[0]["type"]]
        old_value = old[0].get(member)
        if old_value == instances[0].get(VALUE_MEMBER[instances[0]["type"]]):
            continue
        shown = rendered[name]
        if not isinstance(shown, dict) or (instances[0]["type"] == "GeoProperty" and (
            "value" not in shown
        )):  # a bare concise value (a GeoProperty's is its geometry) gets a wrapper
            shown = {"value": shown}
        shown["previous" + member[0].upper() + member[1:]] = old_value
        rendered[name] = shown


def notification_body(
    subscription_id: str, notification_id: str, notified_at: datetime, data: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": notification_id,
        "type": "Notification",
        "subscriptionId": subscription_id,
        "notifiedAt": format_datetime(notified_at),
        "data": data,
    }
