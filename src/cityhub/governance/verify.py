"""Full verification of the stored audit ledger: every finding names the record and the tampering.

Recomputes every leaf hash, the record chain (`seq`, `prev`), every stored interior node, and
the root of every signed tree head (with its Ed25519 signature), and classifies what differs:
  altered   - a record's content no longer matches its leaf hash, or the next record (or a signed
              head) was chained to a different version of it;
  removed   - a sequence number below the log's end (or a signed head's size) has no record;
  inserted  - a record the hub never appended (a second record claiming a sequence number, or
              one whose chain links match neither neighbour);
  reordered - records stored out of their sequence order.
Records after the latest signed head are protected by the chain only; the report says how many.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cityhub.governance import merkle
from cityhub.governance.ledger import GENESIS, Ledger
from cityhub.governance.signing import head_signature_valid, key_id
from cityhub.store.database import Database


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # altered | removed | inserted | reordered | head | node
    seq: int | None
    message: str


@dataclass
class Report:
    records: int = 0
    heads: int = 0
    signed_size: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, kind: str, seq: int | None, message: str) -> None:
        if not any(f.kind == kind and f.seq == seq and seq is not None for f in self.findings):
            self.findings.append(Finding(kind, seq, message))


@dataclass
class _Row:
    idx: int
    record: dict[str, Any] | None
    digest: bytes
    seq: int | None
    prev: str | None


def _read_rows(db: Database, report: Report) -> list[_Row]:
    with db.transaction(write=False) as conn:
        raw = conn.execute("SELECT idx, tenant, dataset, record, leaf_hash FROM ledger_leaves "
                           "ORDER BY idx").fetchall()
    rows = []
    for idx, tenant, dataset, text, stored in raw:
        digest = merkle.leaf_hash(str(text).encode())
        try:
            record = json.loads(text)
            seq = record["seq"] if isinstance(record.get("seq"), int) else None
            prev = record.get("prev") if isinstance(record.get("prev"), str) else None
        except (ValueError, AttributeError):
            record, seq, prev = None, None, None
        where = f"record {seq if seq is not None else '?'} (stored at index {idx})"
        if digest.hex() != stored:
            report.add("altered", seq, f"ALTERED: {where}: its content does not match its "
                       "leaf hash")
        elif record is None or seq is None:
            report.add("inserted", seq, f"INSERTED: {where} is not a ledger record")
        elif record.get("tenant") != tenant or record.get("dataset") != dataset:
            report.add("altered", seq, f"ALTERED: {where}: its tenant/dataset columns differ "
                       "from the record")
        rows.append(_Row(int(idx), record, digest, seq, prev))
    return rows


def _genuine(rows: list[_Row], report: Report) -> dict[int, _Row]:
    """One row per sequence number; extra claimants of a number are reported as inserted."""
    claims: dict[int, list[_Row]] = {}
    for row in rows:
        if row.seq is not None:
            claims.setdefault(row.seq, []).append(row)
    chosen: dict[int, _Row] = {}
    for seq in sorted(claims):
        candidates = claims[seq]
        before = GENESIS if seq == 0 else (
            chosen[seq - 1].digest.hex() if seq - 1 in chosen else None)
        after = {r.prev for r in claims.get(seq + 1, [])}
        best = max(candidates, key=lambda r: ((r.prev == before) + (r.digest.hex() in after),
                                              -r.idx))
        chosen[seq] = best
        for row in candidates:
            if row is not best:
                report.add("inserted", None, f"INSERTED: the record stored at index {row.idx} "
                           f"claims sequence number {seq}, which record at index {best.idx} "
                           "holds with an intact chain")
    # A record numbered past the end, after a gap, yet stored before other records: forged.
    last_stored = rows[-1] if rows else None
    while chosen:
        top = max(chosen)
        row = chosen[top]
        if top == 0 or top - 1 in chosen or row is last_stored:
            break
        del chosen[top]
        report.add("inserted", None, f"INSERTED: the record stored at index {row.idx} claims "
                   f"sequence number {top}, past the end of the ledger")
    return chosen


def _check_sequence(rows: list[_Row], chosen: dict[int, _Row], end: int, report: Report) -> None:
    for seq in range(end):
        if seq not in chosen:
            report.add("removed", seq, f"REMOVED: record {seq} is missing from the ledger")
    kept = [r for r in rows if r.seq is not None and chosen.get(r.seq) is r]
    in_order = sorted(kept, key=lambda r: r.seq or 0)
    moved = [(a, b) for a, b in zip(kept, in_order, strict=True) if a is not b]
    if moved:
        names = ", ".join(f"record {a.seq} at index {a.idx}" for a, _ in moved)
        for a, _ in moved:
            report.add("reordered", a.seq, f"REORDERED: records stored out of sequence: {names}")
    for seq, row in sorted(chosen.items()):
        before = GENESIS if seq == 0 else (
            chosen[seq - 1].digest.hex() if seq - 1 in chosen else None)
        if before is not None and row.prev != before:
            target = seq - 1 if seq > 0 else 0
            report.add("altered", target, f"ALTERED: record {target} was changed after it was "
                       f"appended (record {seq} is chained to a different version of it)")


def _check_tree(db: Database, leaves: list[bytes], report: Report,
                public: Ed25519PublicKey | None) -> None:
    source = merkle.LeafList(leaves)
    with db.transaction(write=False) as conn:
        nodes = conn.execute("SELECT level, pos, hash FROM ledger_nodes").fetchall()
    for level, pos, stored in nodes:
        levels = source.levels
        if level >= len(levels) or pos >= len(levels[level]) or \
                levels[level][pos].hex() != stored:
            report.add("node", None, f"NODE: the stored interior node at level {level}, "
                       f"position {pos} does not match the records")
    good = 0
    for head in Ledger.heads_of(db):
        report.heads += 1
        report.signed_size = max(report.signed_size, head.size)
        if public is not None and (head.key_id != key_id(public) or
                                   not head_signature_valid(public, head)):
            report.add("head", None, f"HEAD: the signature of the tree head of size "
                       f"{head.size} ({head.signed_at}) is not valid for the ledger key")
            continue
        if head.size > len(leaves):
            report.add("removed", None, f"REMOVED: the tree head signed at {head.signed_at} "
                       f"covers {head.size} records, only {len(leaves)} are stored")
            continue
        if merkle.root(source, head.size).hex() != head.root:
            if not any(f.kind in ("altered", "removed", "inserted", "reordered")
                       for f in report.findings):
                report.add("altered", None, f"ALTERED: a record among {good}..{head.size - 1} "
                           f"was changed (the tree head of size {head.size} signed at "
                           f"{head.signed_at} no longer matches)")
            report.add("head", None, f"HEAD: the tree head of size {head.size} signed at "
                       f"{head.signed_at} does not match the stored records")
        else:
            good = head.size


def verify_ledger(db: Database, public: Ed25519PublicKey | None) -> Report:
    """Recompute the whole ledger from storage (see module docstring); `public` checks heads."""
    report = Report()
    Ledger(db)  # the tables exist even on a hub that never audited anything
    rows = _read_rows(db, report)
    report.records = len(rows)
    chosen = _genuine(rows, report)
    heads = Ledger.heads_of(db)
    end = max([0, *(s + 1 for s in chosen), *(h.size for h in heads)])
    _check_sequence(rows, chosen, end, report)
    _check_tree(db, [r.digest for r in rows], report, public)
    return report
