"""The buffered sink keeps the exact order of `record` calls; concurrent appenders (several hub
processes on PostgreSQL) still make one gap-free sequence."""

from __future__ import annotations

import json
import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityhub.governance.audit_sink import LedgerSink
from cityhub.governance.events import AuditEvent
from cityhub.governance.ledger import Ledger
from cityhub.governance.verify import verify_ledger
from cityhub.store.database import Database, open_database


def event(actor: str, n: int) -> AuditEvent:
    return AuditEvent(actor=actor, action="entity.read", subject=f"e{n}")


def test_sink_keeps_call_order_and_flushes_on_close(ledger: Ledger,
                                                    key: Ed25519PrivateKey) -> None:
    sink = LedgerSink(ledger, key, flush_interval_s=0.01, max_batch=7)
    sink.start()
    for n in range(250):
        sink.record(event("a", n))
    sink.close()
    records = [json.loads(leaf.record) for leaf in ledger.leaves(0, 1000)]
    assert [r["subject"] for r in records] == [f"e{n}" for n in range(250)]
    head = ledger.latest_head()
    assert head is not None
    assert head.size == 250


def test_concurrent_appenders_make_one_sequence(db: Database, store_url: str,
                                                key: Ed25519PrivateKey) -> None:
    """Each thread has its own Ledger and, on PostgreSQL, its own connection pool."""
    errors: list[BaseException] = []

    def appender(name: str) -> None:
        own = open_database(store_url) if db.dialect == "postgres" else db
        try:
            ledger = Ledger(own)
            for n in range(20):
                ledger.append([event(name, n), event(name, n + 1000)])
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            if own is not db:
                own.close()

    threads = [threading.Thread(target=appender, args=(f"p{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    ledger = Ledger(db)
    records = [json.loads(leaf.record) for leaf in ledger.leaves(0, 1000)]
    assert [r["seq"] for r in records] == list(range(160))
    for name in ("p0", "p3"):  # each appender's batches stay whole and in its order
        mine = [r["subject"] for r in records if r["actor"] == name]
        assert mine == [s for n in range(20) for s in (f"e{n}", f"e{n + 1000}")]
    ledger.sign(key)
    assert verify_ledger(db, key.public_key()).ok


def test_heads_are_signed_on_schedule_when_the_log_grew(ledger: Ledger,
                                                        key: Ed25519PrivateKey) -> None:
    now = [0.0]
    sink = LedgerSink(ledger, key, sign_interval_s=60.0, clock=lambda: now[0])
    sink.record(event("a", 1))
    assert sink.tick() is None  # flushed, but no head is due yet
    assert (ledger.size(), ledger.latest_head()) == (1, None)
    now[0] = 61.0
    first = sink.tick()
    assert first is not None
    assert first.size == 1
    now[0] = 200.0
    assert sink.tick() is None  # due, but the log did not grow: no new head
    sink.record(event("a", 2))
    now[0] = 300.0
    second = sink.tick()
    assert second is not None
    assert second.size == 2
    assert [h.size for h in ledger.heads()] == [1, 2]
