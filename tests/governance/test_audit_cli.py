"""`cityhub audit verify` on a real store: intact, then tampered with raw SQL (SQLite and
PostgreSQL); the one line per finding names the record."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityhub.cli import app
from cityhub.governance.events import AuditEvent
from cityhub.governance.ledger import Ledger
from cityhub.governance.signing import load_or_create_key
from cityhub.store.database import open_database


@pytest.fixture
def env(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CITYHUB_STORE_URL", store_url)
    monkeypatch.setenv("CITYHUB_DATA_DIR", str(tmp_path / "data"))
    db = open_database(store_url)
    ledger = Ledger(db)
    ledger.append([AuditEvent(actor=f"u{i}", action="entity.write", subject=f"s{i}")
                   for i in range(12)])
    ledger.sign(load_or_create_key(tmp_path / "data" / "audit-ed25519.pem"))
    db.close()
    return store_url


def test_verify_intact_then_tampered(env: str) -> None:
    runner = CliRunner()
    intact = runner.invoke(app, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "ledger intact: 12 records, 1 signed tree heads" in intact.output

    db = open_database(env)
    with db.transaction(write=True) as conn:
        conn.execute("UPDATE ledger_leaves SET record = REPLACE(record, '\"u4\"', '\"eve\"') "
                     "WHERE idx = 4")
        conn.execute("DELETE FROM ledger_leaves WHERE idx = 9")
    db.close()
    tampered = runner.invoke(app, ["audit", "verify"])
    assert tampered.exit_code == 1
    assert "ALTERED: record 4 (stored at index 4): its content does not match its leaf hash" \
        in tampered.output
    assert "REMOVED: record 9 is missing from the ledger" in tampered.output
    assert "Traceback" not in tampered.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_bad_key_file_is_one_line(env: str, tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a key")
    result = CliRunner().invoke(app, ["audit", "verify", "--public-key",
                                      str(tmp_path / "junk.pem")])
    assert result.exit_code == 1
    assert "cannot read the key" in result.output
    assert "Traceback" not in result.output
