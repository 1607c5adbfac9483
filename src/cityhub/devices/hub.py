"""The hub side of devices: the registry (devices are also Device entities) and idempotent
ingestion of measurements into entity history, with dead letters for whatever is refused.

Idempotence: every accepted message id is recorded in `ingest_seen` inside the same store
transaction that writes its history (a change listener of the store runs the insert), so a
retried batch adds nothing twice. A batch goes in one transaction for all its devices; all
messages of a device map to one entity, whose write lock serialises concurrent batches of that
device across hub processes.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cityhub.devices import tables
from cityhub.devices.credentials import new_token, token_digest, token_matches
from cityhub.devices.messages import DECODERS, Measurement, Rejected, decode, format_utc, validate
from cityhub.devices.registry import (
    DeviceRecord,
    InvalidDevice,
    alert_entity,
    check_registration,
    device_entity,
    measurement_entity,
)
from cityhub.store.database import Connection
from cityhub.store.port import Change
from cityhub.store.service import Clock, EntityService, utc_now
from cityhub.store.sql import SqlStore
from cityhub.store.temporal import TemporalStore

log = logging.getLogger(__name__)
# Edge batches (over HTTP or JetStream) are recorded as handled under this consumer name, with
# the hub process that handled them (see `DeviceHub.dead_letter`).
BATCH_CONSUMER = "cityhub-ingest"
# A Device entity's dateLastValueReported is written with a batch of its device's measurements
# at most this often (the registry's last_seen with every batch): it was a second entity write
# per device and batch, about a fifth of the ingest work.
DEVICE_ENTITY_EVERY = timedelta(seconds=1)
Action = Callable[[Connection], None]


class UnknownDevice(LookupError):
    pass


class AlreadyRegistered(ValueError):
    pass


class _Raced(Exception):
    """Some of these message ids are held already (a retry, or another process was first):
    try again without them."""

    def __init__(self, found: dict[str, set[str]]) -> None:
        super().__init__("message ids already held")
        self.found = found


def _me() -> str:
    """This hub process, as a handled batch records it: asked at each record, not at import,
    so that a process forked after the import (a `serve --workers` supervisor's child) records
    its own pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


# Dead letters: (tenant, device, source, reason, raw message).
Letters = list[tuple[str, str, str, str, bytes]]


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.reasons.extend(other.reasons)


class DeviceHub:
    """Registry and ingestion on the hub's store (see module docstring)."""

    def __init__(self, store: SqlStore, clock: Clock = utc_now) -> None:
        self.store, self.db, self.clock = store, store.db, clock
        tables.ensure_schema(self.db)
        self.service = EntityService(store, clock)
        self.temporal = TemporalStore(store, clock)
        self._pending: contextvars.ContextVar[Action | None] = contextvars.ContextVar(
            f"device_pending_{id(self)}", default=None)
        store.listeners.append(self._run_pending)
        # When this process last wrote each Device entity's last-seen state (see
        # DEVICE_ENTITY_EVERY).
        self._entity_written: dict[tuple[str, str], datetime] = {}

    def _device_entity_due(self, tenant: str, device_id: str, moment: datetime) -> bool:
        written = self._entity_written.get((tenant, device_id))
        return written is None or not timedelta(0) <= moment - written < DEVICE_ENTITY_EVERY

    def close(self) -> None:
        for listener in (self._run_pending, self.temporal._run_pending):
            if listener in self.store.listeners:
                self.store.listeners.remove(listener)

    def _run_pending(self, conn: Connection, _changes: list[Change]) -> None:
        action = self._pending.get()
        if action is not None:
            action(conn)

    def _now(self) -> datetime:
        return self.clock()

    # -- registry -------------------------------------------------------------------------------

    def register(self, tenant: str, device_id: str, type_name: str, owner: str,
                 longitude: float, latitude: float, decoder: str = "json") -> tuple[
                     DeviceRecord, str]:
        """Add a device; returns it and its token (shown once, stored as a digest)."""
        check_registration(device_id, type_name, owner, longitude, latitude, decoder,
                           set(DECODERS))
        token = new_token()
        record = DeviceRecord(tenant, device_id, type_name, owner, longitude, latitude,
                              token_digest(token), decoder)
        now = format_utc(self._now())

        def add(conn: Connection) -> None:
            if tables.device_exists(conn, tenant, device_id):
                raise AlreadyRegistered(f"device {device_id} is already registered")
            tables.insert_device(conn, record, now)

        self._with_entity(tenant, record, add)
        log.info("event=device_registered tenant=%s device=%s type=%s owner=%s", tenant,
                 device_id, type_name, owner)
        return record, token

    def _with_entity(self, tenant: str, record: DeviceRecord, action: Action) -> None:
        """Write the Device entity and run `action` in the same transaction."""
        token = self._pending.set(action)
        try:
            self.service.batch(tenant, "upsert", [device_entity(record)], replace=False)
        finally:
            self._pending.reset(token)

    def get(self, tenant: str, device_id: str) -> DeviceRecord:
        with self.db.transaction(write=False) as conn:
            found = tables.devices(conn, tenant, [device_id])
        if not found:
            raise UnknownDevice(f"device {device_id} is not registered")
        return found[0]

    def registered(self, tenant: str, device_ids: list[str]) -> set[str]:
        """Which of these devices are registered (in any state)."""
        with self.db.transaction(write=False) as conn:
            return {r.device_id for r in tables.devices(conn, tenant, device_ids)}

    def devices(self, tenant: str | None, limit: int = 1000, offset: int = 0
                ) -> list[DeviceRecord]:
        with self.db.transaction(write=False) as conn:
            return tables.devices(conn, tenant, None, limit, offset)

    def set_state(self, tenant: str, device_id: str, state: str) -> DeviceRecord:
        """Revoke (state "revoked") or reinstate ("ok") a device."""
        if state not in ("ok", "revoked"):
            raise InvalidDevice("state must be ok or revoked")
        record = self.get(tenant, device_id)
        record.state = state
        self._with_entity(tenant, record, lambda conn: tables.set_device(
            conn, tenant, device_id, state=state))
        log.info("event=device_state tenant=%s device=%s state=%s", tenant, device_id, state)
        return record

    def rotate(self, tenant: str, device_id: str) -> str:
        """A new token for the device; the old one stops working."""
        self.get(tenant, device_id)
        token = new_token()
        with self.db.transaction(write=True) as conn:
            tables.set_device(conn, tenant, device_id, credential=token_digest(token))
        return token

    # -- dead letters ---------------------------------------------------------------------------

    def dead_letter(self, letters: Letters, batch: str | None = None) -> bool:
        """Store refused messages. With `batch` (an edge batch's id), the batch is recorded
        as handled in the same transaction, and nothing is stored if it had been already:
        a batch redelivered after a crash, or posted again after a lost answer, adds its dead
        letters once. False when `batch` had been handled."""
        if not letters and batch is None:
            return True
        now = format_utc(self._now())
        with self.db.transaction(write=True) as conn:
            if batch is not None and not tables.first_delivery(conn, BATCH_CONSUMER, batch, _me(),
                                                               now):
                return False
            if letters:
                tables.add_dead_letters(conn, letters, now)
        for tenant, device, source, reason, _raw in letters[:5]:
            log.info("event=dead_letter tenant=%s device=%s source=%s reason=%r", tenant,
                     device, source, reason)
        return True

    def batch_handled(self, batch: str) -> bool:
        """Whether the edge batch `batch` was handled already (see `dead_letter`)."""
        with self.db.transaction(write=False) as conn:
            return conn.execute("SELECT 1 FROM bus_consumed WHERE consumer = ? AND msg_id = ?",
                                (BATCH_CONSUMER, batch)).fetchone() is not None

    def dead_letters(self, tenant: str, limit: int = 100, offset: int = 0,
                     device_id: str | None = None) -> tuple[list[dict[str, object]], int]:
        with self.db.transaction(write=False) as conn:
            return (tables.dead_letters(conn, tenant, limit, offset, device_id),
                    tables.count_dead_letters(conn, tenant))

    # -- ingestion ------------------------------------------------------------------------------

    def ingest_raw(self, tenant: str, device_id: str, raw: bytes, key: str | None,
                   source: str, letters: Letters | None = None) -> IngestResult:
        """A message straight from a device (HTTP or the hub's MQTT intake): authenticate with
        `key` (else the envelope's `key`), decode, validate, ingest; refused ones dead-letter
        (into `letters` when given, for the caller to store: see `ingest`)."""
        try:
            with self.db.transaction(write=False) as conn:
                found = tables.devices(conn, tenant, [device_id])
            if not found:
                raise Rejected(f"unknown device {device_id[:64]!r}")
            record = found[0]
            envelope = decode(raw, record.decoder)
            if not token_matches(key if key is not None else envelope.get("key"),
                                 record.credential):
                raise Rejected("bad or missing device credential")
            if record.state == "revoked":
                raise Rejected("device is revoked")
            measurement = validate(envelope, record.kind, tenant, device_id, raw, self._now())
        except Rejected as refused:
            letter = (tenant, device_id, source, refused.reason, raw)
            if letters is None:
                self.dead_letter([letter])
            else:
                letters.append(letter)
            return IngestResult(rejected=1, reasons=[refused.reason])
        return self.ingest(tenant, [measurement], source, letters)

    def ingest(self, tenant: str, measurements: Iterable[Measurement], source: str,
               letters: Letters | None = None) -> IngestResult:
        """Measurements already authenticated and validated (by an edge agent): each message id
        lands once; unknown or revoked devices dead-letter. With `letters`, the dead letters
        are added to it instead of stored: an edge batch stores them with its batch record
        (`dead_letter`), so that a batch redone after a crash stores them once."""
        groups: dict[str, list[Measurement]] = {}
        for measurement in measurements:
            groups.setdefault(measurement.device_id, []).append(measurement)
        result = IngestResult()
        with self.db.transaction(write=False) as conn:
            records = {r.device_id: r for r in tables.devices(conn, tenant, sorted(groups))}
        refused: Letters = []
        accepted: list[tuple[DeviceRecord, list[Measurement]]] = []
        for device_id, items in groups.items():
            record = records.get(device_id)
            reason = ("unknown device" if record is None else
                      "device is revoked" if record.state == "revoked" else None)
            if reason is not None or record is None:
                refused.extend((tenant, device_id, source, reason or "", _raw(m)) for m in items)
                result.rejected += len(items)
                continue
            accepted.append((record, items))
        if accepted:
            result.add(self._ingest_devices(tenant, accepted))
        if letters is None:
            self.dead_letter(refused)
        else:
            letters.extend(refused)
        return result

    def _ingest_devices(self, tenant: str, batch: list[tuple[DeviceRecord, list[Measurement]]]
                        ) -> IngestResult:
        """One transaction for the whole batch: history and current values of the devices'
        measurement entities, their Device entities' last-seen state (when due), the
        registry's last_seen and the message ids. The ids are checked inside it; ids already
        held (a retried batch, or another process first) are dropped and the transaction tried
        again without them."""
        unique = {record.device_id: (record, list({m.message_id: m for m in items}.values()))
                  for record, items in batch}
        total = sum(len(items) for _r, items in batch)
        held: dict[str, set[str]] = {}
        for _attempt in range(3):
            fresh = [(record, [m for m in items if m.message_id not in held.get(device_id, ())])
                     for device_id, (record, items) in unique.items()]
            fresh = [(record, items) for record, items in fresh if items]
            accepted = sum(len(items) for _r, items in fresh)
            if not fresh:
                return IngestResult(duplicates=total)
            moment = self._now()
            now = format_utc(moment)
            ids = {record.device_id: [m.message_id for m in items] for record, items in fresh}

            def record_seen(conn: Connection, ids: dict[str, list[str]] = ids,
                            now: str = now) -> None:
                found = tables.mark_seen(conn, tenant, ids, now)
                if found:  # rolls the whole batch back; tried again without them
                    raise _Raced(found)
                tables.set_last_seen(conn, tenant, list(ids), now)

            stale = [record for record, _items in fresh if self._device_entity_due(
                tenant, record.device_id, moment)]
            for record, _items in fresh:
                record.last_seen = now
            token = self._pending.set(record_seen)
            try:
                self.temporal.upsert_many(
                    tenant, [*(measurement_entity(record, items) for record, items in fresh),
                             *(device_entity(record) for record in stale)], known_new=True)
            except _Raced as raced:
                for device_id, found in raced.found.items():
                    held.setdefault(device_id, set()).update(found)
                continue
            finally:
                self._pending.reset(token)
            for record in stale:
                self._entity_written[(tenant, record.device_id)] = moment
            return IngestResult(accepted=accepted, duplicates=total - accepted)
        raise RuntimeError("message ids kept racing")  # pragma: no cover - needs 3 lost races

    def raise_alerts(self, tenant: str, alerts: list[dict[str, Any]]) -> int:
        """Alerts raised by an edge's local rules become Alert entities (ids derived from device,
        rule and time, so a retried batch writes the same entities)."""
        with self.db.transaction(write=False) as conn:
            records = {r.device_id: r for r in tables.devices(
                conn, tenant, sorted({str(a.get("device")) for a in alerts}))}
        entities = [alert_entity(records[str(a["device"])], a) for a in alerts
                    if str(a.get("device")) in records]
        if entities:
            self.service.batch(tenant, "upsert", entities)
        return len(entities)

    def check_key(self, tenant: str, device_id: str, key: str) -> DeviceRecord:
        """The device if `key` is its token and it is not revoked, else Rejected."""
        try:
            record = self.get(tenant, device_id)
        except UnknownDevice:
            raise Rejected("unknown device") from None
        if not token_matches(key, record.credential):
            raise Rejected("bad or missing device credential")
        if record.state == "revoked":
            raise Rejected("device is revoked")
        return record


def _raw(measurement: Measurement) -> bytes:
    import orjson

    return orjson.dumps(measurement.to_json())


__all__ = ["AlreadyRegistered", "DeviceHub", "IngestResult", "InvalidDevice", "UnknownDevice"]
