"""The audit API: signed heads, proofs a client can check with RFC 9162, the steward's report."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from cityhub.config import Settings
from cityhub.governance import merkle
from cityhub.governance.events import AuditEvent
from cityhub.governance.signing import head_message
from tests.api.governance_helpers import hub

PROBLEM = "application/problem+json"


def use(actor: str, purpose: str, grant: str | None, dataset: str = "air-quality") -> AuditEvent:
    return AuditEvent(actor=actor, action="entity.read", subject="urn:ngsi-ld:X:1",
                      dataset=dataset, purpose=purpose, grant=grant, department="transport",
                      decision="permit")


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'hub.db'}",
                    auth="disabled",  # access control has its own tests (tests/governance)
                    public_url="http://testserver")


async def test_signed_heads_and_proofs_verify(tmp_path: Path) -> None:
    async with hub(_settings(tmp_path)) as (app, http):
        for i in range(11):
            app.state.audit.record(use(f"analyst{i % 2}", "planning", "g-1"))
        signed = await http.post("/audit/head")
        assert signed.status_code == 201
        first = signed.json()
        assert first["size"] == 11
        head = (await http.get("/audit/head")).json()
        public = load_pem_public_key(head["publicKey"].encode())
        public.verify(base64.b64decode(first["signature"]),  # type: ignore[union-attr]
                      head_message(11, first["root"], first["signedAt"]))

        leaves = (await http.get("/audit/leaves", params={"start": 0, "end": 11})).json()
        assert [leaf["index"] for leaf in leaves] == list(range(11))
        for params in ({"index": 6}, {"hash": leaves[6]["leafHash"]}):
            proof = (await http.get("/audit/proof/inclusion", params=params)).json()
            assert proof["treeSize"] == 11
            assert proof["index"] == 6
            assert merkle.verify_inclusion(
                merkle.leaf_hash(leaves[6]["record"].encode()), 6, 11,
                [bytes.fromhex(p) for p in proof["path"]], bytes.fromhex(first["root"]))

        for _ in range(6):
            app.state.audit.record(use("auditor", "review", None))
        second = (await http.post("/audit/head")).json()
        assert second["size"] == 17
        proof = (await http.get("/audit/proof/consistency",
                                params={"first": 11, "second": 17})).json()
        assert merkle.verify_consistency(11, 17, bytes.fromhex(first["root"]),
                                         bytes.fromhex(second["root"]),
                                         [bytes.fromhex(p) for p in proof["path"]])
        assert [h["size"] for h in (await http.get("/audit/heads")).json()] == [11, 17]


async def test_steward_report_says_who_used_a_dataset_for_what(tmp_path: Path) -> None:
    async with hub(_settings(tmp_path)) as (app, http):
        for _ in range(3):
            app.state.audit.record(use("alice", "congestion study", "grant-7"))
        app.state.audit.record(use("bob", "air report", None))
        app.state.audit.record(use("carol", "other", None, dataset="traffic-flow"))
        report = (await http.get("/audit/datasets/air-quality/report")).json()
    assert report["events"] == 4
    assert report["actors"] == ["alice", "bob"]
    alice = next(u for u in report["uses"] if u["actor"] == "alice")
    assert (alice["purpose"], alice["grant"], alice["count"]) == ("congestion study", "grant-7", 3)
    assert alice["decisions"] == {"permit": 3}
    assert alice["department"] == "transport"
    assert alice["first"] <= alice["last"]


async def test_events_buffered_at_shutdown_are_kept_and_signed(tmp_path: Path) -> None:
    async with hub(_settings(tmp_path)) as (app, _http):
        for i in range(5):
            app.state.audit.record(use(f"a{i}", "p", None))
    async with hub(_settings(tmp_path)) as (_app, http):
        head = (await http.get("/audit/head")).json()
    assert head["size"] == 5
    assert head["signedHead"]["size"] == 5


BAD_REQUESTS = [
    ("/audit/proof/inclusion", {"index": 99}, 400),
    ("/audit/proof/inclusion", {}, 400),
    ("/audit/proof/inclusion", {"hash": "ab" * 32}, 404),
    ("/audit/proof/inclusion", {"hash": "xyz"}, 400),
    ("/audit/proof/consistency", {"first": 3, "second": 2}, 400),
    ("/audit/proof/consistency", {"first": 1, "second": 50}, 400),
    ("/audit/leaves", {"start": -1}, 400),
    ("/audit/datasets/nope/report", {}, 404),
]


async def test_bad_requests_are_problems(tmp_path: Path) -> None:
    async with hub(_settings(tmp_path)) as (app, http):
        for i in range(3):
            app.state.audit.record(use(f"a{i}", "p", None))
        for path, params, status in BAD_REQUESTS:
            response = await http.get(path, params=params)
            assert response.status_code == status, (path, params, response.text)
            assert response.headers["content-type"] == PROBLEM
