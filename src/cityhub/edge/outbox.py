"""The edge agent's durable outbox (SQLite, WAL): every accepted message, dead letter, alert and
window aggregate is written here before the device gets its acknowledgement, and deleted only
once the hub has acknowledged it. Rows held for an open window (aggregated forwarding) stay
until the window's aggregate replaces them. Also caches the device registry for offline starts.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

KINDS = ("measurement", "held", "aggregate", "alert", "dead", "unverified")


@dataclass(frozen=True)
class Row:
    """An outbox row as stored: `raw` is its JSON, which the forwarder sends unparsed."""

    seq: int
    kind: str
    tenant: str
    raw: bytes

    @property
    def body(self) -> dict[str, object]:
        parsed: dict[str, object] = orjson.loads(self.raw)
        return parsed


class Outbox:
    """Thread-safe: the intake writes, the forwarder reads and deletes."""

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                     timeout=30.0)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL survives a killed process (the WAL is in the OS); FULL also a power cut.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY "
                               "AUTOINCREMENT, kind TEXT NOT NULL, tenant TEXT NOT NULL, "
                               "body BLOB NOT NULL)")
            self._conn.execute("CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, seq)")
            self._conn.execute("CREATE TABLE IF NOT EXISTS registry (id INTEGER PRIMARY KEY "
                               "CHECK (id = 1), body BLOB NOT NULL)")
            # Names this outbox: its sequence numbers restart only with a new file, so ids
            # built from them (JetStream message ids) carry it too.
            self._conn.execute("CREATE TABLE IF NOT EXISTS identity (id INTEGER PRIMARY KEY "
                               "CHECK (id = 1), name TEXT NOT NULL)")
            self._conn.execute("INSERT INTO identity (id, name) VALUES (1, ?) "
                               "ON CONFLICT (id) DO NOTHING", (uuid.uuid4().hex[:12],))
            self.name: str = self._conn.execute(
                "SELECT name FROM identity WHERE id = 1").fetchone()[0]

    def put(self, items: Iterable[tuple[str, str, dict[str, object]]]) -> list[int]:
        """Append (kind, tenant, body) rows in one transaction; their sequence numbers."""
        seqs: list[int] = []
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for kind, tenant, body in items:
                    cursor = self._conn.execute(
                        "INSERT INTO outbox (kind, tenant, body) VALUES (?, ?, ?)",
                        (kind, tenant, orjson.dumps(body)))
                    seqs.append(int(cursor.lastrowid or 0))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return seqs

    def replace(self, remove: list[int], items: list[tuple[str, str, dict[str, object]]]) -> None:
        """Delete `remove` and append `items` atomically (a window's aggregate for its rows)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._delete(remove)
                for kind, tenant, body in items:
                    self._conn.execute("INSERT INTO outbox (kind, tenant, body) VALUES (?, ?, ?)",
                                       (kind, tenant, orjson.dumps(body)))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def take(self, limit: int, after: int = 0, exclude: tuple[str, ...] = ("held",)
             ) -> list[Row]:
        """The oldest `limit` rows to forward with a sequence number above `after` (those
        below are in flight), left in place until `delete`."""
        marks = ", ".join("?" for _ in exclude)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT seq, kind, tenant, body FROM outbox WHERE seq > ? AND kind NOT IN "  # noqa: S608
                f"({marks}) ORDER BY seq LIMIT ?", (after, *exclude, limit)).fetchall()
        return [Row(*r) for r in rows]

    def held(self) -> list[Row]:
        with self._lock:
            rows = self._conn.execute("SELECT seq, kind, tenant, body FROM outbox "
                                      "WHERE kind = 'held' ORDER BY seq").fetchall()
        return [Row(*r) for r in rows]

    def _delete(self, seqs: list[int]) -> None:
        for start in range(0, len(seqs), 500):
            chunk = seqs[start:start + 500]
            self._conn.execute(f"DELETE FROM outbox WHERE seq IN ({', '.join('?' * len(chunk))})",  # noqa: S608
                               chunk)

    def delete(self, seqs: list[int]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._delete(seqs)
            self._conn.execute("COMMIT")

    def size(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def save_registry(self, body: object) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO registry (id, body) VALUES (1, ?) ON CONFLICT (id) "
                               "DO UPDATE SET body = excluded.body", (orjson.dumps(body),))

    def load_registry(self) -> object | None:
        with self._lock:
            row = self._conn.execute("SELECT body FROM registry WHERE id = 1").fetchone()
        return None if row is None else orjson.loads(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
