"""Subscriptions and their pending notifications in the SQL store (SQLite or PostgreSQL).

- CRUD of subscriptions, kept as `cityhub.ngsild.subscription` records plus delivery status.
- `on_changes`, the store's change listener: inside the entity write transaction it reads the
  tenant's live subscriptions (one indexed SELECT; parsed documents are cached by id and
  version) and queues one `notifications` row per matching (subscription, change), so a change
  is queued exactly once, by the process that wrote it, and only if the write commits.
- Delivery bookkeeping for the notifier of every hub process: `claim` leases subscriptions
  that have due work (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer), so one
  process at a time delivers a subscription's notifications, in order; `record` completes,
  retries with back-off or drops them and keeps the status members (timesSent, lastSuccess...).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from cityhub.ngsild.errors import AlreadyExists, ResourceNotFound
from cityhub.ngsild.model import Entity
from cityhub.ngsild.payload import format_datetime
from cityhub.ngsild.subscription import (
    DeliveryState,
    Subscription,
    from_record,
    matches,
    to_record,
)
from cityhub.store.database import Connection, Database, Dialect
from cityhub.store.port import Change

log = logging.getLogger(__name__)
_STATE_COLUMNS = ("created_at, modified_at, times_sent, times_failed, last_notification, "
                  "last_success, last_failure, delivery_status")
_CACHE_LIMIT = 10_000
_DDL_LOCK = 0x63697479_73756273  # an advisory lock key ("citysubs") serializing the DDL
# Subscriptions with due work that nobody leases: a periodic beat, or a queue whose oldest
# notification is due (once the throttling period since the last one has passed). The oldest
# decides: what was queued behind a notification waiting for its retry waits too.
_CLAIM = (
    "SELECT s.tenant, s.id, s.version, s.doc, s.time_interval, s.next_periodic "
    "FROM subscriptions s WHERE s.active = 1 "
    "AND (s.expires_at IS NULL OR s.expires_at > ?) "
    "AND (s.lease_until IS NULL OR s.lease_until < ?) "
    "AND ((s.next_periodic IS NOT NULL AND s.next_periodic <= ?) OR ("
    "(s.throttling IS NULL OR s.last_sent IS NULL OR s.last_sent + s.throttling <= ?) "
    "AND (SELECT n.due_at FROM notifications n WHERE n.tenant = s.tenant "
    "AND n.subscription_id = s.id ORDER BY n.nid LIMIT 1) <= ?)) LIMIT ?"
)


def subscription_ddl(dialect: Dialect) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    real = "REAL" if dialect == "sqlite" else "DOUBLE PRECISION"
    return [
        "CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY)",
        f"""CREATE TABLE IF NOT EXISTS subscriptions (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            version INTEGER NOT NULL,
            active INTEGER NOT NULL,
            expires_at {real},
            time_interval {real},
            throttling {real},
            doc TEXT NOT NULL,
            created_at TEXT NOT NULL,
            modified_at TEXT NOT NULL,
            next_periodic {real},
            last_sent {real},
            lease_owner TEXT,
            lease_until {real},
            times_sent INTEGER NOT NULL DEFAULT 0,
            times_failed INTEGER NOT NULL DEFAULT 0,
            last_notification TEXT,
            last_success TEXT,
            last_failure TEXT,
            delivery_status TEXT,
            PRIMARY KEY (tenant, id))""",
        "CREATE INDEX IF NOT EXISTS subscriptions_live ON subscriptions (tenant, active)",
        f"""CREATE TABLE IF NOT EXISTS notifications (
            nid {serial},
            tenant TEXT NOT NULL,
            subscription_id TEXT NOT NULL,
            notification_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            due_at {real} NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0)""",
        """CREATE INDEX IF NOT EXISTS notifications_queue
            ON notifications (tenant, subscription_id, nid)""",
    ]


@dataclass(frozen=True)
class StoredSubscription:
    tenant: str
    subscription: Subscription
    state: DeliveryState


@dataclass(frozen=True)
class Pending:
    """A queued notification: one entity change (`operation` create | update | delete)."""

    nid: int
    notification_id: str
    operation: str
    entity: Entity
    previous: Entity | None
    at: str
    attempts: int


@dataclass(frozen=True)
class Claim:
    """A leased subscription with its due work; only the lease owner may `record` on it."""

    tenant: str
    subscription: Subscription
    owner: str
    lease_until: float
    pending: list[Pending]
    periodic: bool  # a timeInterval notification of the current entities is due


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _iso_epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class SubscriptionStore:
    """See the module docstring; `lease_s` bounds how long one claim may keep a subscription."""

    def __init__(self, db: Database, *, lease_s: float = 30.0) -> None:
        self.db = db
        self.lease_s = lease_s
        self._lock = " FOR UPDATE" if db.dialect == "postgres" else ""
        self._claim_sql = _CLAIM + (" FOR UPDATE SKIP LOCKED" if db.dialect == "postgres" else "")
        self._cache: dict[tuple[str, str], tuple[int, Subscription]] = {}
        # Called (from the writing thread, before commit) when a write queued notifications.
        self.on_queued: Callable[[], None] | None = None
        with db.transaction(write=True) as conn:
            if db.dialect == "postgres":  # hub processes starting together: one DDL at a time
                conn.execute("SELECT pg_advisory_xact_lock(?)", (_DDL_LOCK,))
            for statement in subscription_ddl(db.dialect):
                conn.execute(statement)

    # -- CRUD ------------------------------------------------------------------------------

    def create(self, tenant: str, subscription: Subscription, now: datetime) -> None:
        stamp, sub = format_datetime(now), subscription
        next_periodic = _epoch(now) + sub.time_interval if sub.time_interval else None
        with self.db.transaction(write=True) as conn:
            if tenant:
                conn.execute("INSERT INTO tenants (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
                             (tenant,))
            row = conn.execute(
                "INSERT INTO subscriptions (tenant, id, version, active, expires_at, "
                "time_interval, throttling, doc, created_at, modified_at, next_periodic) "
                "VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO NOTHING "
                "RETURNING id",
                (tenant, sub.id, int(sub.is_active),
                 None if sub.expires_at is None else _epoch(sub.expires_at),
                 sub.time_interval, sub.throttling, orjson.dumps(to_record(sub)).decode(),
                 stamp, stamp, next_periodic),
            ).fetchone()
        if row is None:
            raise AlreadyExists(f"subscription {sub.id} already exists", instance=sub.id)

    def get(self, tenant: str, subscription_id: str) -> StoredSubscription | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                f"SELECT id, version, doc, {_STATE_COLUMNS} FROM subscriptions "
                "WHERE tenant = ? AND id = ?",
                (tenant, subscription_id),
            ).fetchone()
        return None if row is None else self._stored(tenant, row)

    def page(self, tenant: str, limit: int, offset: int) -> tuple[list[StoredSubscription], int]:
        with self.db.transaction(write=False) as conn:
            count = conn.execute(
                "SELECT count(*) FROM subscriptions WHERE tenant = ?", (tenant,)
            ).fetchone()[0]
            rows = conn.execute(
                f"SELECT id, version, doc, {_STATE_COLUMNS} FROM subscriptions "
                "WHERE tenant = ? ORDER BY created_at, id LIMIT ? OFFSET ?",
                (tenant, limit, offset),
            ).fetchall()
        return [self._stored(tenant, row) for row in rows], int(count)

    def update(
        self,
        tenant: str,
        subscription_id: str,
        change: Callable[[Subscription], Subscription],
        now: datetime,
    ) -> Subscription:
        """Replace a subscription by `change(current)`, atomically (ResourceNotFound if none)."""
        with self.db.transaction(write=True) as conn:
            row = conn.execute(
                f"SELECT version, doc, time_interval FROM subscriptions "
                f"WHERE tenant = ? AND id = ?{self._lock}",
                (tenant, subscription_id),
            ).fetchone()
            if row is None:
                raise ResourceNotFound(f"subscription {subscription_id} does not exist",
                                       instance=subscription_id)
            new = change(self._parsed(tenant, subscription_id, row[0], row[1]))
            interval_changed = new.time_interval != row[2]
            conn.execute(
                "UPDATE subscriptions SET version = version + 1, active = ?, expires_at = ?, "
                "time_interval = ?, throttling = ?, doc = ?, modified_at = ?, "
                "next_periodic = CASE WHEN ? THEN ? ELSE next_periodic END "
                "WHERE tenant = ? AND id = ?",
                (int(new.is_active), None if new.expires_at is None else _epoch(new.expires_at),
                 new.time_interval, new.throttling, orjson.dumps(to_record(new)).decode(),
                 format_datetime(now), interval_changed,
                 _epoch(now) + new.time_interval if new.time_interval else None,
                 tenant, subscription_id),
            )
        return new

    def delete(self, tenant: str, subscription_id: str) -> None:
        with self.db.transaction(write=True) as conn:
            gone = conn.execute(
                "DELETE FROM subscriptions WHERE tenant = ? AND id = ? RETURNING id",
                (tenant, subscription_id),
            ).fetchone()
            conn.execute("DELETE FROM notifications WHERE tenant = ? AND subscription_id = ?",
                         (tenant, subscription_id))
        if gone is None:
            raise ResourceNotFound(f"subscription {subscription_id} does not exist",
                                   instance=subscription_id)
        self._cache.pop((tenant, subscription_id), None)

    def _parsed(self, tenant: str, subscription_id: str, version: int, doc: str) -> Subscription:
        cached = self._cache.get((tenant, subscription_id))
        if cached is not None and cached[0] == version:
            return cached[1]
        subscription = from_record(orjson.loads(doc))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[(tenant, subscription_id)] = (version, subscription)
        return subscription

    def _stored(self, tenant: str, row: Sequence[Any]) -> StoredSubscription:
        state = DeliveryState(row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10])
        return StoredSubscription(tenant, self._parsed(tenant, row[0], row[1], row[2]), state)

    # -- the write path --------------------------------------------------------------------

    def on_changes(self, conn: Connection, changes: list[Change]) -> None:
        """The change listener (see module docstring): queue what the changes trigger."""
        if not changes:
            return
        tenant, at = changes[0].tenant, changes[0].at
        rows = conn.execute(
            "SELECT id, version FROM subscriptions WHERE tenant = ? AND active = 1 "
            "AND time_interval IS NULL AND (expires_at IS NULL OR expires_at > ?)",
            (tenant, _iso_epoch(at)),
        ).fetchall()
        if not rows:
            return
        live = self._live(conn, tenant, {r[0]: r[1] for r in rows})
        queued = []
        for change in changes:
            entity_json: bytes | None = None
            for subscription in live:
                if not matches(subscription, change):
                    continue
                if entity_json is None:
                    entity_json = orjson.dumps(change.entity or change.previous)
                payload = b'{"op":"%s","at":"%s","entity":%s,"previous":%s}' % (
                    change.operation.encode(), change.at.encode(), entity_json,
                    orjson.dumps(change.previous if subscription.notification.show_changes
                                 else None),
                )
                queued.append((tenant, subscription.id,
                               f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
                               payload.decode(), _iso_epoch(change.at)))
        conn.executemany(
            "INSERT INTO notifications (tenant, subscription_id, notification_id, payload, "
            "due_at) VALUES (?, ?, ?, ?, ?)",
            queued,
        )
        if queued and self.on_queued is not None:
            self.on_queued()

    def _live(self, conn: Connection, tenant: str, versions: dict[str, int]) -> list[Subscription]:
        stale = [i for i, v in versions.items()
                 if self._cache.get((tenant, i), (None,))[0] != v]
        if stale:
            marks = ", ".join("?" for _ in stale)
            for sub_id, version, doc in conn.execute(
                f"SELECT id, version, doc FROM subscriptions WHERE tenant = ? AND id IN ({marks})",
                [tenant, *stale],
            ).fetchall():
                self._parsed(tenant, sub_id, version, doc)
        found = (self._cache.get((tenant, i)) for i in versions)
        return [entry[1] for entry in found if entry is not None]

    # -- delivery --------------------------------------------------------------------------

    def claim(self, owner: str, now: datetime, *, limit: int, max_rows: int = 100) -> list[Claim]:
        """Lease up to `limit` subscriptions with due work and read it (oldest first)."""
        t = _epoch(now)
        claims = []
        with self.db.transaction(write=True) as conn:
            rows = conn.execute(self._claim_sql, (t, t, t, t, t, limit)).fetchall()
            for tenant, sub_id, version, doc, interval, next_periodic in rows:
                periodic = next_periodic is not None and next_periodic <= t
                upcoming = next_periodic
                if periodic:
                    upcoming = next_periodic + interval
                    if upcoming <= t:  # fell behind (no hub was running): restart the beat
                        upcoming = t + interval
                conn.execute(
                    "UPDATE subscriptions SET lease_owner = ?, lease_until = ?, "
                    "next_periodic = ? WHERE tenant = ? AND id = ?",
                    (owner, t + self.lease_s, upcoming, tenant, sub_id),
                )
                pending = [] if interval else self._due(conn, tenant, sub_id, t, max_rows)
                claims.append(Claim(tenant, self._parsed(tenant, sub_id, version, doc), owner,
                                    t + self.lease_s, pending, periodic))
        return claims

    @staticmethod
    def _due(conn: Connection, tenant: str, sub_id: str, t: float, max_rows: int
             ) -> list[Pending]:
        rows = conn.execute(
            "SELECT nid, notification_id, payload, attempts, due_at FROM notifications "
            "WHERE tenant = ? AND subscription_id = ? ORDER BY nid LIMIT ?",
            (tenant, sub_id, max_rows),
        ).fetchall()
        pending = []
        for nid, notification_id, payload, attempts, due_at in rows:
            if due_at > t:
                break  # it waits for a retry, and so does everything queued after it
            item = orjson.loads(payload)
            pending.append(Pending(nid, notification_id, item["op"], item["entity"],
                                   item["previous"], item["at"], attempts))
        return pending

    def record(
        self,
        claim: Claim,
        sent: Sequence[Pending],
        at: datetime,
        *,
        ok: bool,
        retry_at: datetime | None = None,
    ) -> bool:
        """Record one delivery attempt of `sent` (empty for a periodic notification).

        On success the rows go; on failure they wait until `retry_at` (and with them all that
        is queued after them, see `claim`), or go when `retry_at` is None (given up).
        Returns False when the lease was lost (another process may deliver them instead).
        """
        stamp, nids = format_datetime(at), [p.nid for p in sent]
        with self.db.transaction(write=True) as conn:
            held = conn.execute(
                "UPDATE subscriptions SET times_sent = times_sent + 1, "
                "times_failed = times_failed + ?, last_notification = ?, "
                "last_success = CASE WHEN ? THEN ? ELSE last_success END, "
                "last_failure = CASE WHEN ? THEN last_failure ELSE ? END, "
                "delivery_status = ?, last_sent = ? "
                "WHERE tenant = ? AND id = ? AND lease_owner = ? RETURNING id",
                (0 if ok else 1, stamp, ok, stamp, ok, stamp, "ok" if ok else "failed",
                 _epoch(at), claim.tenant, claim.subscription.id, claim.owner),
            ).fetchone()
            if held is None:
                return False
            if not nids:
                return True
            marks = ", ".join("?" for _ in nids)
            if ok or retry_at is None:
                conn.execute(f"DELETE FROM notifications WHERE nid IN ({marks})", nids)
                return True
            conn.execute(
                f"UPDATE notifications SET attempts = attempts + 1, due_at = ? "
                f"WHERE nid IN ({marks})",
                [_epoch(retry_at), *nids],
            )
        return True

    def release(self, claim: Claim) -> None:
        with self.db.transaction(write=True) as conn:
            conn.execute(
                "UPDATE subscriptions SET lease_owner = NULL, lease_until = NULL "
                "WHERE tenant = ? AND id = ? AND lease_owner = ?",
                (claim.tenant, claim.subscription.id, claim.owner),
            )

    def sweep(self, now: datetime) -> int:
        """Drop queued notifications whose subscription is gone or expired; return how many."""
        with self.db.transaction(write=True) as conn:
            rows = conn.execute(
                "DELETE FROM notifications WHERE NOT EXISTS (SELECT 1 FROM subscriptions s "
                "WHERE s.tenant = notifications.tenant AND s.id = notifications.subscription_id "
                "AND (s.expires_at IS NULL OR s.expires_at > ?)) RETURNING nid",
                (_epoch(now),),
            ).fetchall()
        return len(rows)

    def pending_count(self, tenant: str, subscription_id: str) -> int:
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                "SELECT count(*) FROM notifications WHERE tenant = ? AND subscription_id = ?",
                (tenant, subscription_id),
            ).fetchone()
        return int(row[0])
