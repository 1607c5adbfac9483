"""The edge's durable outbox (SQLite): order, deletion of what the hub took, its identity."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

from cityhub.edge.forwarder import Batch, Forwarder, batch_bodies
from cityhub.edge.outbox import Outbox


def test_rows_survive_a_reopen_and_go_only_when_deleted(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    seqs = outbox.put([("measurement", "a", {"n": 1}), ("dead", "a", {"n": 2}),
                       ("measurement", "b", {"n": 3})])
    name = outbox.name
    outbox.close()
    again = Outbox(tmp_path / "o.db")
    assert again.name == name  # the same outbox: JetStream ids stay comparable
    rows = again.take(10)
    assert [r.seq for r in rows] == seqs
    batches = {b.tenant: b for b in batch_bodies(rows)}
    assert orjson.loads(batches["a"].data) == {
        "tenant": "a", "first": seqs[0], "last": seqs[1], "measurements": [{"n": 1}],
        "aggregates": [], "alerts": [], "deadLetters": [{"n": 2}], "unverified": []}
    assert (batches["a"].seqs, batches["b"].seqs) == (seqs[:2], seqs[2:])
    assert [r.seq for r in again.take(10, after=seqs[1])] == seqs[2:]  # the rest in flight
    again.delete(seqs[:2])
    assert [r.body for r in again.take(10)] == [{"n": 3}]
    again.close()


def test_a_new_outbox_file_has_a_new_name(tmp_path: Path) -> None:
    """Sequence numbers restart with a new file; the name keeps JetStream message ids (edge,
    outbox, rows) from repeating, which the stream would drop as duplicates."""
    first, second = Outbox(tmp_path / "1.db"), Outbox(tmp_path / "2.db")
    assert first.put([("measurement", "", {})]) == second.put([("measurement", "", {})])
    assert first.name != second.name
    first.close()
    second.close()


class RefusingHub:
    """Takes every batch but the one starting at `refuse` (a hub that failed mid-stream)."""

    parallel = 2

    def __init__(self, refuse: int | None) -> None:
        self.refuse = refuse
        self.taken: list[int] = []
        self.lock = threading.Lock()

    def send(self, batch: Batch) -> None:
        if batch.first == self.refuse:
            raise RuntimeError("hub answered 503")
        with self.lock:
            self.taken.extend(row["n"] for row in orjson.loads(batch.data)["measurements"])

    def close(self) -> None:
        pass


def test_pipelined_forwarding_deletes_only_acknowledged_batches(tmp_path: Path) -> None:
    """Two batches out at once: when one fails, the batch beside it that the hub took is
    deleted, the failed one stays and goes later; every row reaches the hub once."""
    outbox = Outbox(tmp_path / "o.db")
    seqs = outbox.put([("measurement", "", {"n": n}) for n in range(25)])
    forwarder = Forwarder(outbox, lambda: hub, batch_size=10, retry_max_s=1.0)
    hub = RefusingHub(refuse=seqs[10])
    with ThreadPoolExecutor(hub.parallel) as pool:
        assert forwarder.forward(hub, pool) is None
        assert [r.seq for r in outbox.take(100)] == seqs[10:20]
        assert sorted(hub.taken) == [*range(10), *range(20, 25)]
        hub.refuse = None
        assert forwarder.forward(hub, pool) == 10
    assert outbox.size() == 0
    assert sorted(hub.taken) == list(range(25))
    outbox.close()
