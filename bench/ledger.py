"""Audit ledger throughput: records/s appended to the Merkle ledger (canonical JSON, leaf hash,
record chain, interior nodes) beside the raw insert rate of rows of the same size into a plain
table of the same store, measured in the same run; plus what a request pays to `record` an
event (the buffered sink), and proof and verification times at the final size.

    .venv/bin/python bench/ledger.py                      # 200,000 records, batches of 500, SQLite
    .venv/bin/python bench/ledger.py --store postgres
    .venv/bin/python bench/ledger.py --records 1000000    # proofs over a million leaves
    .venv/bin/python bench/ledger.py --quick

Goal printed beside the figures: ledger appends >= 50% of raw inserts (auditing is asynchronous:
ingestion pays only `record`, the appends run in the sink's thread).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityhub.governance import merkle
from cityhub.governance.audit_sink import LedgerSink
from cityhub.governance.events import AuditEvent
from cityhub.governance.ledger import Ledger, canonical, event_record
from cityhub.governance.verify import verify_ledger
from cityhub.store.database import open_database
from harness import console, fresh_store, machine_note, print_table, save_results, workdir

AT = datetime(2026, 11, 24, tzinfo=UTC)


def events(count: int, start: int = 0) -> list[AuditEvent]:
    return [AuditEvent(actor=f"analyst{i % 50}@transport", action="entity.read",
                       subject=f"urn:ngsi-ld:TrafficFlowObserved:demo:tf-{i % 5000:05}",
                       at=AT, dataset="traffic-flow", purpose="congestion study",
                       grant=f"grant-{i % 7}", decision="permit", rule="tier-internal",
                       detail={"attrs": ["intensity"]})
            for i in range(start, start + count)]


def raw_rate(url: str, batches: list[list[AuditEvent]]) -> float:
    """Rows of the same canonical JSON into a plain indexed table, same batches."""
    db = open_database(url)
    with db.transaction(write=True) as conn:
        conn.execute("CREATE TABLE bench_raw (idx BIGINT PRIMARY KEY, record TEXT NOT NULL, "
                     "h TEXT NOT NULL)")
    began, idx = time.perf_counter(), 0
    for batch in batches:
        rows = []
        for event in batch:
            rows.append((idx, canonical(event_record(event, idx, "0" * 64)).decode(), "0" * 64))
            idx += 1
        with db.transaction(write=True) as conn:
            conn.executemany("INSERT INTO bench_raw (idx, record, h) VALUES (?, ?, ?)", rows)
    elapsed = time.perf_counter() - began
    db.close()
    return idx / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--proofs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20,000 records")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    if args.quick:
        args.records = 20_000
    all_events = events(args.records)
    batches = [all_events[i:i + args.batch] for i in range(0, len(all_events), args.batch)]
    console.print(f"{args.records:,} records in batches of {args.batch}, {args.store}; "
                  f"{machine_note()} (shared machine: wall-clock figures are noisy)")
    with workdir(args.workdir) as folder, fresh_store(args.store, folder, "ledger") as target:
        raw = raw_rate(target.url, batches)
        db = open_database(target.url)
        ledger = Ledger(db)
        began = time.perf_counter()
        for batch in batches:
            ledger.append(batch)
        appended = args.records / (time.perf_counter() - began)

        sink = LedgerSink(ledger, Ed25519PrivateKey.generate(), flush_interval_s=3600)
        extra = events(20_000, args.records)
        began = time.perf_counter()
        for event in extra:
            sink.record(event)
        record_us = (time.perf_counter() - began) / len(extra) * 1e6
        sink.flush()
        size = ledger.size()

        rng = random.Random(7)
        began = time.perf_counter()
        for _ in range(args.proofs):
            index = rng.randrange(size)
            ledger.inclusion(index, size - rng.randrange(min(size - index, 1000)))
        cold_ms = (time.perf_counter() - began) / args.proofs * 1000
        root = ledger.root(size)
        began = time.perf_counter()
        for _ in range(args.proofs):
            old = rng.randrange(1, size)
            ledger.consistency(old, size)
        consistency_ms = (time.perf_counter() - began) / args.proofs * 1000
        leaf = ledger.leaves(size // 3, size // 3 + 1)[0]
        assert merkle.verify_inclusion(bytes.fromhex(leaf.leaf_hash), leaf.index, size,
                                       ledger.inclusion(leaf.index, size), root)
        began = time.perf_counter()
        report = verify_ledger(db, None)
        verify_s = time.perf_counter() - began
        assert report.ok, report.findings[:3]
        db.close()

    ratio = appended / raw
    print_table("audit ledger", ["figure", "value"], [
        ["raw inserts (rows/s)", raw],
        ["ledger appends (records/s)", appended],
        ["ledger / raw (goal >= 0.5)", ratio],
        ["sink.record per event (us)", record_us],
        ["inclusion proof (ms)", cold_ms],
        ["consistency proof (ms)", consistency_ms],
        [f"verify {size:,} records (s)", verify_s],
    ])
    save_results("ledger", args, {
        "raw_rows_per_s": raw, "ledger_records_per_s": appended, "ratio": ratio,
        "record_us": record_us, "inclusion_ms": cold_ms, "consistency_ms": consistency_ms,
        "verify_s": verify_s, "size": size})


if __name__ == "__main__":
    main()
