"""Wires the audit ledger, privacy budgets, catalogue and history reader into the app's state.

`app.state.audit` is where every auditable event goes (the buffered ledger sink, a sink that
drops events when auditing is off, or a sink the embedding application set before start-up).
The stored catalogue is seeded from the packaged district datasets on first start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from fastapi import FastAPI, Request

from cityhub.config import Settings
from cityhub.governance.audit_sink import LedgerSink
from cityhub.governance.budget import PrivacyBudgets
from cityhub.governance.catalogue import SqlCatalogue
from cityhub.governance.datasets import Dataset
from cityhub.governance.events import AuditEvent
from cityhub.governance.ledger import Ledger
from cityhub.governance.memory_catalogue import MemoryCatalogue, load_areas
from cityhub.governance.signing import load_or_create_key
from cityhub.ngsild.errors import ResourceNotFound
from cityhub.store.sql import SqlStore
from cityhub.store.temporal import TemporalStore

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
HISTORY_LIMIT = 100_000
DATASET_ID = r"^[A-Za-z0-9_.:\-]{1,128}$"


class DroppingSink:
    """The sink when auditing is off: events go nowhere."""

    def record(self, event: AuditEvent) -> None:
        return None


def running(app: FastAPI, settings: Settings, store: SqlStore) -> AbstractContextManager[None]:
    """Open the governance parts on `app.state` for the app's lifetime."""

    @contextmanager
    def scope() -> Iterator[None]:
        ledger = Ledger(store.db)
        key = load_or_create_key(settings.audit_key_path())
        app.state.ledger = ledger
        app.state.audit_key = key
        app.state.privacy_budgets = PrivacyBudgets(store.db, settings.privacy_budget)
        app.state.privacy_areas = load_areas(settings.datasets_file)
        sink: LedgerSink | None = None
        if getattr(app.state, "audit", None) is None:  # else the embedding app brought its own
            if settings.audit_enabled:
                sink = LedgerSink(ledger, key, flush_interval_s=settings.audit_flush_interval_s,
                                  sign_interval_s=settings.audit_sign_interval_s)
                sink.start()
                app.state.audit = sink
            else:
                app.state.audit = DroppingSink()
        try:
            yield
        finally:
            if sink is not None:
                sink.close()
                log.info("event=audit_closed size=%d", ledger.size())

    return scope()


def seed_catalogue(catalogue: SqlCatalogue, path: Path | None) -> None:
    """Fill an empty stored catalogue with the district's default datasets (first start)."""
    if catalogue.datasets():
        return
    for dataset in MemoryCatalogue.load(path).datasets():
        catalogue.put(dataset)
    log.info("event=catalogue_seeded datasets=%d", len(catalogue.datasets()))


def history_reader(request: Request) -> TemporalStore:
    """A history reader for governance, made on first use (quality and privacy read deep)."""
    state = request.app.state
    with _LOCK:
        reader: TemporalStore | None = getattr(state, "governance_history", None)
        if reader is None:
            reader = state.governance_history = TemporalStore(
                state.store, instance_limit=HISTORY_LIMIT)
    return reader


def whole_store(request: Request) -> SqlStore:
    """The hub's store unguarded: for what a governance service computes over all stored data
    (freshness duties, quality scores, private aggregates, exports that pass each entity
    through the guard themselves). The route itself is decided first."""
    store: SqlStore = request.app.state.store
    return store


def catalogued(request: Request, tenant: str, dataset_id: str) -> Dataset:
    """The catalogued dataset, or ResourceNotFound (404)."""
    dataset: Dataset | None = request.app.state.catalogue.get(dataset_id, tenant)
    if dataset is None:
        raise ResourceNotFound(f"no dataset {dataset_id!r} in the catalogue")
    return dataset


def record(request: Request, event: AuditEvent) -> None:
    request.app.state.audit.record(event)
