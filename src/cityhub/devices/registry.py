"""Registered devices (`DeviceRecord`), the MQTT topic scheme, and the NGSI-LD entities a device
and its measurements become (FIWARE Smart Data Models, UN/CEFACT unit codes).

Topic scheme: a device publishes on `cityhub/<tenant>/<device-id>/up` (`_` is the default
tenant); the edge agent answers alerts on `cityhub/<tenant>/<device-id>/alert`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cityhub.devices.catalogue import DeviceType, device_type
from cityhub.devices.messages import Measurement
from cityhub.ngsild.model import DEFAULT_VOCAB, LOCATION, Entity, Instance

TOPIC_ROOT = "cityhub"
DEFAULT_TENANT_SEGMENT = "_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
STATES = ("ok", "revoked", "silent", "faulty")
SEVERITIES = ("informational", "low", "medium", "high", "critical")


class InvalidDevice(ValueError):
    """A registration that cannot be accepted (bad id, type, owner or location)."""


@dataclass
class DeviceRecord:
    """A device in the registry; `credential` is the digest of its token, never the token."""

    tenant: str
    device_id: str
    type: str
    owner: str
    longitude: float
    latitude: float
    credential: str
    decoder: str = "json"
    state: str = "ok"
    last_seen: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> DeviceType:
        found = device_type(self.type)
        assert found is not None, "checked at registration"
        return found

    @property
    def entity_id(self) -> str:
        return f"urn:ngsi-ld:{self.type}:{self.owner}:{self.device_id}"

    @property
    def device_entity_id(self) -> str:
        return f"urn:ngsi-ld:Device:{self.owner}:{self.device_id}"

    def public(self) -> dict[str, Any]:
        """What the registry API shows (no credential)."""
        return {"id": self.device_id, "tenant": self.tenant, "type": self.type,
                "owner": self.owner, "location": [self.longitude, self.latitude],
                "decoder": self.decoder, "state": self.state, "lastSeen": self.last_seen,
                "entityId": self.entity_id, "deviceEntityId": self.device_entity_id,
                "topic": topic(self.tenant, self.device_id)}


def check_registration(device_id: str, type_name: str, owner: str, longitude: float,
                       latitude: float, decoder: str, decoders: set[str]) -> None:
    if not NAME.match(device_id):
        raise InvalidDevice("device id: 1-64 letters, digits, '_', '-', '.'")
    if not NAME.match(owner):
        raise InvalidDevice("owner (department): 1-64 letters, digits, '_', '-', '.'")
    if device_type(type_name) is None:
        from cityhub.devices.catalogue import CATALOGUE
        raise InvalidDevice(f"unknown type {type_name!r}: one of {', '.join(sorted(CATALOGUE))}")
    if not (-180 <= longitude <= 180 and -90 <= latitude <= 90):
        raise InvalidDevice("location must be longitude in -180..180, latitude in -90..90")
    if decoder not in decoders:
        raise InvalidDevice(f"unknown decoder {decoder!r}: one of {', '.join(sorted(decoders))}")


def topic(tenant: str, device_id: str, leaf: str = "up") -> str:
    return f"{TOPIC_ROOT}/{tenant or DEFAULT_TENANT_SEGMENT}/{device_id}/{leaf}"


def parse_topic(name: str) -> tuple[str, str] | None:
    """(tenant, device id) of an uplink topic, or None when it is not one."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != TOPIC_ROOT or parts[3] != "up" or not parts[2]:
        return None
    tenant = "" if parts[1] == DEFAULT_TENANT_SEGMENT else parts[1]
    return tenant, parts[2]


def _iri(term: str) -> str:
    return DEFAULT_VOCAB + term


def _prop(value: Any, **extra: Any) -> list[Instance]:
    return [{"type": "Property", "value": value, **extra}]


def _point(record: DeviceRecord) -> list[Instance]:
    return [{"type": "GeoProperty",
             "value": {"type": "Point", "coordinates": [record.longitude, record.latitude]}}]


def device_entity(record: DeviceRecord) -> Entity:
    """The Device entity (Smart Data Models Device) of a registry record."""
    attrs: dict[str, list[Instance]] = {
        LOCATION: _point(record),
        _iri("controlledProperty"): _prop([a.name for a in record.kind.attributes]),
        _iri("deviceState"): _prop(record.state),
        _iri("owner"): _prop(record.owner),
        _iri("refDeviceModel"): [{"type": "Relationship",
                                  "object": f"urn:ngsi-ld:DeviceModel:{record.type}"}],
    }
    if record.last_seen is not None:
        attrs[_iri("dateLastValueReported")] = _prop(record.last_seen)
    return {"id": record.device_entity_id, "type": [_iri("Device")], "attrs": attrs}


def measurement_entity(record: DeviceRecord, measurements: list[Measurement]) -> Entity:
    """One temporal entity holding every instance of `measurements` (all of `record`), each
    with its observedAt and unitCode; the newest becomes the current value."""
    by_name: dict[str, list[Instance]] = {}
    units = {a.name: a.unit for a in record.kind.attributes}
    for measurement in measurements:
        observed = measurement.observed_at
        for name, value in measurement.values.items():
            instance: Instance = {"type": "Property", "value": value, "observedAt": observed}
            unit = units.get(name)
            if unit is not None:
                instance["unitCode"] = unit
            held = by_name.get(name)
            if held is None:
                held = by_name[name] = []
            held.append(instance)
    attrs = {LOCATION: _point(record), **{_iri(name): held for name, held in by_name.items()}}
    attrs[_iri("refDevice")] = [{"type": "Relationship", "object": record.device_entity_id}]
    return {"id": record.entity_id, "type": [_iri(record.type)], "attrs": attrs}


def alert_entity(record: DeviceRecord, alert: dict[str, Any]) -> Entity:
    """The Alert entity of an alert an edge raised for `record` (see edge/rules.py)."""
    at = str(alert.get("at", ""))
    stamp = re.sub(r"[^0-9]", "", at)[:20]
    rule = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(alert.get("rule", "rule")))[:64]
    severity = str(alert.get("severity", "medium"))
    return {
        "id": f"urn:ngsi-ld:Alert:{record.owner}:{record.device_id}-{rule}-{stamp}",
        "type": [_iri("Alert")],
        "attrs": {
            LOCATION: _point(record),
            _iri("category"): _prop(record.kind.category),
            _iri("subCategory"): _prop(str(alert.get("kind", "rule"))),
            _iri("severity"): _prop(severity if severity in SEVERITIES else "medium"),
            _iri("description"): _prop(str(alert.get("description", ""))[:500]),
            _iri("dateIssued"): _prop(at),
            _iri("status"): _prop("open"),
            _iri("alertSource"): [{"type": "Relationship", "object": record.entity_id}],
        },
    }
