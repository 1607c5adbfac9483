"""The stored catalogue: datasets (an entity type plus a scope, owned by a department, with a
classification tier) in the hub's database, and the lookup from an entity to its dataset.

Lookups happen on every read and write, so each process keeps the tenant's datasets in memory
and re-reads them after its own changes or when older than `max_age_s` (other processes).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from cityhub.governance.datasets import Dataset, Tier
from cityhub.governance.tables import create_tables
from cityhub.store.database import Database

UNCATALOGUED_PREFIX = "uncatalogued:"


class CatalogueError(ValueError):
    """A dataset record that cannot be stored (bad tier, missing type, unknown id...)."""


def dataset_to_doc(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.id, "title": dataset.title, "entity_type": dataset.entity_type,
        "owner": dataset.owner, "tier": dataset.tier.value, "scope": dataset.scope,
        "description": dataset.description,
        "update_frequency_s": (dataset.update_frequency.total_seconds()
                               if dataset.update_frequency is not None else None),
        "licence": dataset.licence, "tenant": dataset.tenant,
        "attributes": list(dataset.attributes),
        "ranges": {k: list(v) for k, v in dataset.ranges.items()},
    }


def dataset_from_doc(doc: dict[str, Any]) -> Dataset:
    frequency = doc.get("update_frequency_s")
    return Dataset(
        id=doc["id"], title=doc["title"], entity_type=doc["entity_type"], owner=doc["owner"],
        tier=Tier(doc["tier"]), scope=doc.get("scope"), description=doc.get("description", ""),
        update_frequency=timedelta(seconds=frequency) if frequency is not None else None,
        licence=doc.get("licence"), tenant=doc.get("tenant", ""),
        attributes=tuple(doc.get("attributes", ())),
        ranges={k: (float(v[0]), float(v[1])) for k, v in doc.get("ranges", {}).items()},
    )


def _scopes(entity: dict[str, Any]) -> list[str]:
    scope = entity.get("scope")
    if scope is None:
        return []
    return [scope] if isinstance(scope, str) else [s for s in scope if isinstance(s, str)]


def covers(dataset: Dataset, types: Iterable[str], scopes: list[str]) -> bool:
    """Whether an entity of `types` in `scopes` belongs to `dataset`."""
    if dataset.entity_type not in types:
        return False
    if dataset.scope is None:
        return True
    prefix = dataset.scope.rstrip("/")
    return any(s == prefix or s.startswith(prefix + "/") for s in scopes)


class SqlCatalogue:
    """Implements `cityhub.governance.datasets.Catalogue` on the hub's database."""

    def __init__(self, db: Database, *, max_age_s: float = 2.0) -> None:
        self.db = db
        self._max_age_s = max_age_s
        self._cache: dict[str, tuple[float, dict[str, list[Dataset]], list[Dataset]]] = {}
        self._lock = threading.Lock()
        create_tables(db)

    def put(self, dataset: Dataset) -> None:
        """Create or replace a dataset record."""
        if not dataset.id or not dataset.entity_type or not dataset.title:
            raise CatalogueError("a dataset needs an id, a title and an entity type")
        doc = json.dumps(dataset_to_doc(dataset))
        with self.db.transaction(write=True) as conn:
            conn.execute("DELETE FROM gov_datasets WHERE tenant = ? AND id = ?",
                         (dataset.tenant, dataset.id))
            conn.execute("INSERT INTO gov_datasets (tenant, id, doc) VALUES (?, ?, ?)",
                         (dataset.tenant, dataset.id, doc))
        self._forget(dataset.tenant)

    def delete(self, dataset_id: str, tenant: str = "") -> bool:
        with self.db.transaction(write=True) as conn:
            found = conn.execute("SELECT 1 FROM gov_datasets WHERE tenant = ? AND id = ?",
                                 (tenant, dataset_id)).fetchone()
            conn.execute("DELETE FROM gov_datasets WHERE tenant = ? AND id = ?",
                         (tenant, dataset_id))
        self._forget(tenant)
        return found is not None

    def _forget(self, tenant: str) -> None:
        with self._lock:
            self._cache.pop(tenant, None)

    def _tenant(self, tenant: str) -> tuple[dict[str, list[Dataset]], list[Dataset]]:
        with self._lock:
            cached = self._cache.get(tenant)
            if cached is not None and time.monotonic() - cached[0] < self._max_age_s:
                return cached[1], cached[2]
        with self.db.transaction(write=False) as conn:
            rows = conn.execute("SELECT doc FROM gov_datasets WHERE tenant = ? ORDER BY id",
                                (tenant,)).fetchall()
        datasets = [dataset_from_doc(json.loads(row[0])) for row in rows]
        by_type: dict[str, list[Dataset]] = {}
        for dataset in datasets:
            by_type.setdefault(dataset.entity_type, []).append(dataset)
        for candidates in by_type.values():  # scoped datasets before the catch-all of a type
            candidates.sort(key=lambda d: (d.scope is None, -len(d.scope or ""), d.id))
        with self._lock:
            self._cache[tenant] = (time.monotonic(), by_type, datasets)
        return by_type, datasets

    def get(self, dataset_id: str, tenant: str = "") -> Dataset | None:
        return next((d for d in self._tenant(tenant)[1] if d.id == dataset_id), None)

    def datasets(self, tenant: str = "") -> list[Dataset]:
        return list(self._tenant(tenant)[1])

    def for_type(self, tenant: str, entity_type: str) -> list[Dataset]:
        return list(self._tenant(tenant)[0].get(entity_type, ()))

    def dataset_of(self, tenant: str, entity: dict[str, Any]) -> Dataset | None:
        """The dataset an entity belongs to (the most specific scope wins), or None."""
        by_type = self._tenant(tenant)[0]
        types = entity.get("type", ())
        if isinstance(types, str):
            types = [types]
        scopes: list[str] | None = None
        for entity_type in types:
            for dataset in by_type.get(entity_type, ()):
                if dataset.scope is None:
                    return dataset
                if scopes is None:
                    scopes = _scopes(entity)
                if covers(dataset, [entity_type], scopes):
                    return dataset
        return None
