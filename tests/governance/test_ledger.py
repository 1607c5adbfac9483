"""The stored ledger: appends, proofs that verify against signed heads, and tampering that
`verify_ledger` detects and names (raw SQL on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityhub.governance import merkle
from cityhub.governance.events import AuditEvent
from cityhub.governance.ledger import GENESIS, Ledger, canonical
from cityhub.governance.signing import head_signature_valid, load_or_create_key
from cityhub.governance.verify import verify_ledger
from cityhub.store.database import Database

AT = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def event(i: int) -> AuditEvent:
    return AuditEvent(actor=f"user{i % 3}@ecology", action="entity.read",
                      subject=f"urn:ngsi-ld:AirQualityObserved:ecology:aq-{i:03}", at=AT,
                      dataset="air-quality", purpose="research", grant=f"g-{i % 2}")


def filled(ledger: Ledger, key: Ed25519PrivateKey, n: int = 20) -> None:
    ledger.append([event(i) for i in range(n // 2)])
    ledger.sign(key)
    ledger.append([event(i) for i in range(n // 2, n)])
    ledger.sign(key)


def messages(db: Database, key: Ed25519PrivateKey) -> list[str]:
    return [f.message for f in verify_ledger(db, key.public_key()).findings]


def test_appends_chain_records_and_proofs_verify(ledger: Ledger, key: Ed25519PrivateKey) -> None:
    for start in range(0, 37, 5):  # uneven batches
        ledger.append([event(i) for i in range(start, min(start + 5, 37))])
    assert ledger.size() == 37
    leaves = ledger.leaves(0, 37)
    assert [json.loads(leaf.record)["seq"] for leaf in leaves] == list(range(37))
    assert json.loads(leaves[0].record)["prev"] == GENESIS
    assert json.loads(leaves[5].record)["prev"] == leaves[4].leaf_hash
    naive = merkle.LeafList([bytes.fromhex(leaf.leaf_hash) for leaf in leaves])
    for size in (1, 2, 3, 16, 17, 37):
        assert ledger.root(size) == merkle.root(naive, size)
    head = ledger.sign(key)
    assert head.size == 37
    assert head_signature_valid(key.public_key(), head)
    root = bytes.fromhex(head.root)
    for index in (0, 13, 36):
        path = ledger.inclusion(index, 37)
        assert merkle.verify_inclusion(bytes.fromhex(leaves[index].leaf_hash), index, 37, path,
                                       root)
    assert ledger.index_of(leaves[13].leaf_hash) == 13
    old = ledger.root(17)
    assert merkle.verify_consistency(17, 37, old, root, ledger.consistency(17, 37))
    assert verify_ledger(ledger.db, key.public_key()).ok


def test_a_second_ledger_object_continues_the_same_sequence(db: Database) -> None:
    """Two hub processes share one log: each appends after whatever is stored."""
    first, second = Ledger(db), Ledger(db)
    first.append([event(0), event(1), event(2)])
    second.append([event(3)])
    first.append([event(4)])
    assert [json.loads(leaf.record)["seq"] for leaf in first.leaves(0, 10)] == [0, 1, 2, 3, 4]
    assert verify_ledger(db, None).ok


def test_key_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    key = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path).public_key() == key.public_key()


def rehash(db: Database, idx: int, record: str) -> None:
    digest = merkle.leaf_hash(record.encode()).hex()
    with db.transaction(write=True) as conn:
        conn.execute("UPDATE ledger_leaves SET record = ?, leaf_hash = ? WHERE idx = ?",
                     (record, digest, idx))


def stored(db: Database, idx: int) -> tuple[str, str]:
    with db.transaction(write=False) as conn:
        row = conn.execute("SELECT record, leaf_hash FROM ledger_leaves WHERE idx = ?",
                           (idx,)).fetchone()
    return str(row[0]), str(row[1])


def test_altered_record_is_named(ledger: Ledger, key: Ed25519PrivateKey) -> None:
    filled(ledger, key)
    with ledger.db.transaction(write=True) as conn:
        conn.execute("UPDATE ledger_leaves SET record = REPLACE(record, 'research', 'marketing') "
                     "WHERE idx = 7")
    found = messages(ledger.db, key)
    assert any(m.startswith("ALTERED: record 7 ") for m in found), found


def test_altered_record_with_recomputed_hash_is_named(ledger: Ledger,
                                                      key: Ed25519PrivateKey) -> None:
    filled(ledger, key)
    record, _ = stored(ledger.db, 7)
    rehash(ledger.db, 7, record.replace("research", "marketing"))
    found = messages(ledger.db, key)
    assert any(m.startswith("ALTERED: record 7 was changed") for m in found), found


def test_altered_last_record_is_caught_by_the_signed_head(ledger: Ledger,
                                                          key: Ed25519PrivateKey) -> None:
    filled(ledger, key)
    record, _ = stored(ledger.db, 19)
    rehash(ledger.db, 19, record.replace("research", "marketing"))
    found = messages(ledger.db, key)
    assert any(m.startswith("ALTERED: a record among 10..19") for m in found), found


def test_removed_record_is_named(ledger: Ledger, key: Ed25519PrivateKey) -> None:
    filled(ledger, key)
    with ledger.db.transaction(write=True) as conn:
        conn.execute("DELETE FROM ledger_leaves WHERE idx = 7")
    assert "REMOVED: record 7 is missing from the ledger" in messages(ledger.db, key)


def test_removed_record_with_renumbering_is_named(ledger: Ledger, key: Ed25519PrivateKey) -> None:
    filled(ledger, key)
    with ledger.db.transaction(write=True) as conn:
        conn.execute("DELETE FROM ledger_leaves WHERE idx = 7")
        for idx in range(8, 20):
            conn.execute("UPDATE ledger_leaves SET idx = ? WHERE idx = ?", (idx - 1, idx))
    found = messages(ledger.db, key)
    assert "REMOVED: record 7 is missing from the ledger" in found, found
    assert not any(m.startswith(("REORDERED", "INSERTED")) for m in found), found


def test_removed_tail_is_caught_by_the_signed_head(ledger: Ledger, key: Ed25519PrivateKey) -> None:
    filled(ledger, key)
    with ledger.db.transaction(write=True) as conn:
        conn.execute("DELETE FROM ledger_leaves WHERE idx >= 18")
    found = messages(ledger.db, key)
    assert "REMOVED: record 18 is missing from the ledger" in found, found
    assert "REMOVED: record 19 is missing from the ledger" in found, found


def test_inserted_record_is_named(ledger: Ledger, key: Ed25519PrivateKey) -> None:
    filled(ledger, key)
    genuine = json.loads(stored(ledger.db, 8)[0])
    forged = dict(genuine, actor="mallory@nowhere", prev=stored(ledger.db, 7)[1])
    text = canonical(forged).decode()
    with ledger.db.transaction(write=True) as conn:
        for idx in range(19, 7, -1):
            conn.execute("UPDATE ledger_leaves SET idx = ? WHERE idx = ?", (idx + 1, idx))
        conn.execute("INSERT INTO ledger_leaves (idx, tenant, dataset, record, leaf_hash) "
                     "VALUES (8, '', 'air-quality', ?, ?)",
                     (text, merkle.leaf_hash(text.encode()).hex()))
    found = messages(ledger.db, key)
    assert any(m.startswith("INSERTED: the record stored at index 8 ") for m in found), found
    assert not any(m.startswith(("REMOVED", "REORDERED")) for m in found), found


def test_inserted_record_numbered_past_the_end_is_named(ledger: Ledger,
                                                        key: Ed25519PrivateKey) -> None:
    filled(ledger, key)
    forged = dict(json.loads(stored(ledger.db, 8)[0]), seq=100, actor="mallory@nowhere")
    text = canonical(forged).decode()
    with ledger.db.transaction(write=True) as conn:
        for idx in range(19, 7, -1):
            conn.execute("UPDATE ledger_leaves SET idx = ? WHERE idx = ?", (idx + 1, idx))
        conn.execute("INSERT INTO ledger_leaves (idx, tenant, dataset, record, leaf_hash) "
                     "VALUES (8, '', 'air-quality', ?, ?)",
                     (text, merkle.leaf_hash(text.encode()).hex()))
    found = messages(ledger.db, key)
    assert "INSERTED: the record stored at index 8 claims sequence number 100, past the end " \
        "of the ledger" in found, found
    assert not any(m.startswith(("REMOVED", "REORDERED", "ALTERED")) for m in found), found


def test_reordered_records_are_named(ledger: Ledger, key: Ed25519PrivateKey) -> None:
    filled(ledger, key)
    three, eleven = stored(ledger.db, 3), stored(ledger.db, 11)
    with ledger.db.transaction(write=True) as conn:
        for idx, (record, digest) in ((3, eleven), (11, three)):
            conn.execute("UPDATE ledger_leaves SET record = ?, leaf_hash = ? WHERE idx = ?",
                         (record, digest, idx))
    found = messages(ledger.db, key)
    assert any(m.startswith("REORDERED") and "record 11 at index 3" in m
               and "record 3 at index 11" in m for m in found), found
    assert not any(m.startswith(("REMOVED", "INSERTED", "ALTERED")) for m in found), found


def test_forged_head_signature_is_named(ledger: Ledger, key: Ed25519PrivateKey) -> None:
    filled(ledger, key)
    other = Ed25519PrivateKey.generate()
    assert verify_ledger(ledger.db, key.public_key()).ok
    assert any("not valid for the ledger key" in f.message
               for f in verify_ledger(ledger.db, other.public_key()).findings)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_proofs_over_many_leaves_use_stored_nodes(ledger: Ledger) -> None:
    ledger.append([event(i) for i in range(5000)])
    leaves = [bytes.fromhex(leaf.leaf_hash) for leaf in ledger.leaves(0, 5000)]
    naive = merkle.LeafList(leaves)
    root = ledger.root(5000)
    path = ledger.inclusion(4321, 5000)
    assert path == merkle.inclusion_path(naive, 4321, 5000)
    assert merkle.verify_inclusion(leaves[4321], 4321, 5000, path, root)
    assert ledger.consistency(4097, 5000) == merkle.consistency_path(naive, 4097, 5000)
