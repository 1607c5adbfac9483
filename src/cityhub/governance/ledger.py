"""The audit ledger: an append-only RFC 9162 Merkle log of audit events in the hub's database.

Tables (created here, never updated or deleted by any code path):
  ledger_leaves (idx, tenant, dataset, record, leaf_hash): one canonical JSON record per event;
      each record carries its own `seq` and the leaf hash of the record before it (`prev`).
  ledger_nodes (level, pos, hash): every complete perfect subtree, so proofs and roots over a
      million leaves need a few dozen lookups.
  ledger_heads (size, root, signed_at, signature, key_id): signed tree heads.
Appends run in one write transaction that, on PostgreSQL, holds an advisory lock: several hub
processes append to one single sequence.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityhub.governance import merkle
from cityhub.governance.events import AuditEvent
from cityhub.governance.signing import TreeHead, sign_head
from cityhub.store.database import Connection, Database

GENESIS = "0" * 64
_LOCK_KEY = 0x6C6564676572  # "ledger": the advisory lock that serialises appends on PostgreSQL


def ddl(dialect: str) -> list[str]:
    big = "BIGINT" if dialect == "postgres" else "INTEGER"
    return [
        f"""CREATE TABLE IF NOT EXISTS ledger_leaves (
            idx {big} PRIMARY KEY, tenant TEXT NOT NULL, dataset TEXT,
            record TEXT NOT NULL, leaf_hash TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS ledger_leaves_dataset ON ledger_leaves (tenant, dataset, idx)",
        "CREATE INDEX IF NOT EXISTS ledger_leaves_hash ON ledger_leaves (leaf_hash)",
        f"""CREATE TABLE IF NOT EXISTS ledger_nodes (
            level INTEGER NOT NULL, pos {big} NOT NULL, hash TEXT NOT NULL,
            PRIMARY KEY (level, pos))""",
        f"""CREATE TABLE IF NOT EXISTS ledger_heads (
            size {big} PRIMARY KEY, root TEXT NOT NULL, signed_at TEXT NOT NULL,
            signature TEXT NOT NULL, key_id TEXT NOT NULL)""",
    ]


def canonical(value: dict[str, Any]) -> bytes:
    """The one byte form of a record that is hashed: sorted keys, no spaces, UTF-8 (the bytes
    are stored as they are, so verification never re-serialises)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                        default=str)


def event_record(event: AuditEvent, seq: int, prev: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "prev": prev,
        "actor": event.actor,
        "action": event.action,
        "subject": event.subject,
        "at": event.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "tenant": event.tenant,
        "department": event.department,
        "dataset": event.dataset,
        "purpose": event.purpose,
        "grant": event.grant,
        "decision": event.decision,
        "rule": event.rule,
        "detail": event.detail,
    }


@dataclass(frozen=True, slots=True)
class Leaf:
    index: int
    record: str
    leaf_hash: str


class LedgerError(ValueError):
    """A request the ledger cannot answer (a size beyond the log, an unknown leaf)."""


class _StoredSubtrees:
    """Perfect subtrees read from ledger_nodes (level 0 from the leaves), cached: they never
    change once written."""

    def __init__(self, conn: Connection, cache: dict[tuple[int, int], bytes]) -> None:
        self._conn = conn
        self._cache = cache

    def subtree(self, level: int, pos: int) -> bytes:
        key = (level, pos)
        found = self._cache.get(key)
        if found is not None:
            return found
        if level == 0:
            row = self._conn.execute(
                "SELECT leaf_hash FROM ledger_leaves WHERE idx = ?", (pos,)).fetchone()
        else:
            row = self._conn.execute(
                "SELECT hash FROM ledger_nodes WHERE level = ? AND pos = ?", (level, pos)
            ).fetchone()
        if row is None:
            raise LedgerError(f"the ledger lacks the subtree at level {level}, position {pos}")
        value = bytes.fromhex(row[0])
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = value
        return value


class Ledger:
    """Appends, tree heads and proofs over the stored log (see module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction(write=True) as conn:
            if db.dialect == "postgres":  # CREATE IF NOT EXISTS races between processes
                conn.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_KEY,))
            for statement in ddl(db.dialect):
                conn.execute(statement)
        self._cache: dict[tuple[int, int], bytes] = {}
        self._frontier: tuple[int, list[tuple[int, bytes]]] = (0, [])
        self._lock = threading.Lock()

    # -- appends -----------------------------------------------------------------------------

    def append(self, events: Sequence[AuditEvent]) -> int:
        """Append `events` in order as one batch; returns the new size of the log."""
        if not events:
            return self.size()
        with self._lock, self.db.transaction(write=True) as conn:
            if self.db.dialect == "postgres":
                conn.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_KEY,))
            last = conn.execute(
                "SELECT idx, leaf_hash FROM ledger_leaves ORDER BY idx DESC LIMIT 1").fetchone()
            size, prev = (0, GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))
            frontier = self._load_frontier(conn, size)
            leaves: list[tuple[Any, ...]] = []
            nodes: list[tuple[int, int, str]] = []
            for offset, event in enumerate(events):
                index = size + offset
                data = canonical(event_record(event, index, prev))
                digest = merkle.leaf_hash(data)
                prev = digest.hex()
                leaves.append((index, event.tenant, event.dataset, data.decode(), prev))
                frontier.append((0, digest))
                while len(frontier) > 1 and frontier[-1][0] == frontier[-2][0]:
                    level, right = frontier.pop()
                    _, left = frontier.pop()
                    parent = merkle.node_hash(left, right)
                    frontier.append((level + 1, parent))
                    nodes.append((level + 1, ((index + 1) >> (level + 1)) - 1, parent.hex()))
            conn.executemany(
                "INSERT INTO ledger_leaves (idx, tenant, dataset, record, leaf_hash) "
                "VALUES (?, ?, ?, ?, ?)", leaves)
            conn.executemany("INSERT INTO ledger_nodes (level, pos, hash) VALUES (?, ?, ?)", nodes)
            new_size = size + len(events)
        self._frontier = (new_size, list(frontier))
        return new_size

    def _load_frontier(self, conn: Connection, size: int) -> list[tuple[int, bytes]]:
        """The perfect subtrees that make up a tree of `size` leaves, largest first."""
        cached_size, cached = self._frontier
        if cached_size == size:
            return list(cached)
        source = _StoredSubtrees(conn, self._cache)
        frontier, start = [], 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                frontier.append((level, source.subtree(level, start >> level)))
                start += 1 << level
        return frontier

    # -- reads -------------------------------------------------------------------------------

    def size(self) -> int:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT MAX(idx) FROM ledger_leaves").fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def leaves(self, start: int, end: int) -> list[Leaf]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT idx, record, leaf_hash FROM ledger_leaves WHERE idx >= ? AND idx < ? "
                "ORDER BY idx", (start, end)).fetchall()
        return [Leaf(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def dataset_records(self, tenant: str, dataset: str) -> list[tuple[int, dict[str, Any]]]:
        """(index, record) of every event about `dataset`, oldest first."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute("SELECT idx, record FROM ledger_leaves WHERE tenant = ? AND "
                                "dataset = ? ORDER BY idx", (tenant, dataset)).fetchall()
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def index_of(self, leaf_hash_hex: str) -> int | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT MIN(idx) FROM ledger_leaves WHERE leaf_hash = ?",
                               (leaf_hash_hex.lower(),)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _check_size(self, size: int) -> None:
        current = self.size()
        if size < 0 or size > current:
            raise LedgerError(f"the ledger holds {current} records, not {size}")

    def root(self, size: int) -> bytes:
        self._check_size(size)
        with self.db.transaction(write=False) as conn:
            return merkle.root(_StoredSubtrees(conn, self._cache), size)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        if not 0 <= index < size:
            raise LedgerError(f"record {index} is not in the first {size} records")
        with self.db.transaction(write=False) as conn:
            return merkle.inclusion_path(_StoredSubtrees(conn, self._cache), index, size)

    def consistency(self, old: int, new: int) -> list[bytes]:
        self._check_size(new)
        if not 0 <= old <= new:
            raise LedgerError(f"no consistency proof from size {old} to size {new}")
        with self.db.transaction(write=False) as conn:
            return merkle.consistency_path(_StoredSubtrees(conn, self._cache), old, new)

    # -- signed tree heads -------------------------------------------------------------------

    def heads(self) -> list[TreeHead]:
        return self.heads_of(self.db)

    @staticmethod
    def heads_of(db: Database) -> list[TreeHead]:
        with db.transaction(write=False) as conn:
            rows = conn.execute("SELECT size, root, signed_at, signature, key_id "
                                "FROM ledger_heads ORDER BY size").fetchall()
        return [TreeHead(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]

    def latest_head(self) -> TreeHead | None:
        with self.db.transaction(write=False) as conn:
            r = conn.execute("SELECT size, root, signed_at, signature, key_id FROM ledger_heads "
                             "ORDER BY size DESC LIMIT 1").fetchone()
        return None if r is None else TreeHead(int(r[0]), str(r[1]), str(r[2]), str(r[3]),
                                               str(r[4]))

    def sign(self, key: Ed25519PrivateKey, now: datetime | None = None) -> TreeHead:
        """Sign the current tree head (kept once per size: a size already signed is returned)."""
        size = self.size()
        latest = self.latest_head()
        if latest is not None and latest.size == size:
            return latest
        at = (now or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")
        head = sign_head(key, size, self.root(size).hex(), at)
        with self.db.transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO ledger_heads (size, root, signed_at, signature, key_id) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (size) DO NOTHING",
                (head.size, head.root, head.signed_at, head.signature, head.key_id))
        return head
