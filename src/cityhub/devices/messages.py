"""Device messages: decoders registered by name turn raw bytes into an envelope, and `validate`
checks an envelope against the device's Smart Data Models type into a `Measurement`.

The `json` envelope (what devices and the simulator send):
    {"id": "<message id>", "key": "<device token>", "observedAt": "2026-05-01T08:00:00Z",
     "values": {"pm25": 12.5, "no2": 31}}
`id` defaults to a digest of the device and the raw bytes (so a resent message keeps its id),
`observedAt` to the time of receipt. `key` is needed where the intake has no other credential.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cityhub.devices.catalogue import DeviceType

MAX_PAYLOAD = 64 * 1024
MAX_ID = 128
FUTURE_SLACK = timedelta(minutes=5)
Value = float | str
Decoder = Callable[[bytes], dict[str, Any]]
DECODERS: dict[str, Decoder] = {}


class Rejected(ValueError):
    """A message refused, with the reason a dead letter records."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Measurement:
    """One accepted message of one device."""

    tenant: str
    device_id: str
    message_id: str
    observed_at: str  # ISO 8601 UTC with Z
    values: dict[str, Value]

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "device": self.device_id, "id": self.message_id,
                "observedAt": self.observed_at, "values": self.values}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        return cls(str(data["tenant"]), str(data["device"]), str(data["id"]),
                   str(data["observedAt"]), dict(data["values"]))


def register_decoder(name: str) -> Callable[[Decoder], Decoder]:
    """Register a payload decoder under `name` (built-ins register the same way)."""
    def add(decoder: Decoder) -> Decoder:
        DECODERS[name] = decoder
        return decoder
    return add


@register_decoder("json")
def decode_json(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Rejected(f"payload is not JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise Rejected("payload is not a JSON object")
    return data


@register_decoder("kv")
def decode_kv(raw: bytes) -> dict[str, Any]:
    """`pm25=12.5;no2=31;key=...;id=...;observedAt=...` (numbers where they parse)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("payload is not UTF-8 text") from None
    envelope: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise Rejected(f"not a name=value pair: {part[:40]!r}")
        if name in ("id", "key", "observedAt"):
            envelope[name] = value
            continue
        try:
            values[name] = float(value)
        except ValueError:
            values[name] = value
    envelope["values"] = values
    return envelope


def decode(raw: bytes, decoder: str) -> dict[str, Any]:
    if len(raw) > MAX_PAYLOAD:
        raise Rejected(f"payload larger than {MAX_PAYLOAD} bytes")
    found = DECODERS.get(decoder)
    if found is None:
        raise Rejected(f"unknown decoder {decoder!r}")
    return found(raw)


def message_id(device_id: str, raw: bytes) -> str:
    return hashlib.sha256(device_id.encode() + b"\0" + raw).hexdigest()[:32]


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _observed_at(value: object, now: datetime) -> str:
    if value is None:
        return format_utc(now)
    if not isinstance(value, str) or len(value) > 40:
        raise Rejected("observedAt is not an ISO 8601 date-time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"observedAt {value[:40]!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise Rejected("observedAt has no time zone")
    if moment > now + FUTURE_SLACK:
        raise Rejected("observedAt is in the future")
    if moment.year < 2000:
        raise Rejected("observedAt is before 2000")
    return format_utc(moment)


def _value(kind: DeviceType, name: object, value: object) -> Value:
    attribute = kind.attribute(name) if isinstance(name, str) else None
    if attribute is None:
        raise Rejected(f"{kind.name} has no attribute {str(name)[:40]!r}")
    if attribute.kind == "text":
        if not isinstance(value, str) or value not in attribute.choices:
            raise Rejected(f"{attribute.name} must be one of {', '.join(attribute.choices)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Rejected(f"{attribute.name} must be a finite number")
    number = float(value)
    low = attribute.low if attribute.low is not None else -math.inf
    high = attribute.high if attribute.high is not None else math.inf
    if not low <= number <= high:
        raise Rejected(f"{attribute.name}={number:g} outside {low:g}..{high:g}")
    return number


def validate(envelope: dict[str, Any], kind: DeviceType, tenant: str, device_id: str,
             raw: bytes, now: datetime) -> Measurement:
    """The measurement an envelope carries, or `Rejected` with the first reason found."""
    values = envelope.get("values")
    if not isinstance(values, dict) or not values:
        raise Rejected("no values: expected a non-empty object under 'values'")
    checked = {str(name): _value(kind, name, value) for name, value in values.items()}
    given = envelope.get("id")
    if given is None:
        given = message_id(device_id, raw)
    if not isinstance(given, str | int) or isinstance(given, bool) or not str(given).strip() \
            or len(str(given)) > MAX_ID:
        raise Rejected(f"id must be a non-empty string of at most {MAX_ID} characters")
    return Measurement(tenant, device_id, str(given), _observed_at(envelope.get("observedAt"), now),
                       checked)
