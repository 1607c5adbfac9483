"""What governance reads of a dataset: its entities and their attribute history, through the
store's ports only (`Store.query`, `TemporalStore.read`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shapely.geometry import shape

from cityhub.governance.datasets import Dataset
from cityhub.ngsild import temporal as tl
from cityhub.ngsild.model import DEFAULT_VOCAB, LOCATION, Entity
from cityhub.ngsild.query.ast import TypeName
from cityhub.store.port import EntityQuery, Store
from cityhub.store.temporal import TemporalStore

PAGE = 1000
REF_DEVICE = DEFAULT_VOCAB + "refDevice"


@dataclass(frozen=True, slots=True)
class Reading:
    """One recorded value of an attribute: `at` is its observedAt in epoch seconds."""

    entity_id: str
    at: float
    value: Any
    unit: str | None


def entities(store: Store, dataset: Dataset) -> Iterator[Entity]:
    """Every entity of the dataset's type (and scope), page by page."""
    offset = 0
    while True:
        page = store.query(dataset.tenant, EntityQuery(
            types=TypeName(dataset.entity_type), limit=PAGE, offset=offset)).entities
        for entity in page:
            if dataset.scope is None or any(
                    str(s).startswith(dataset.scope) for s in entity.get("scope", [])):
                yield entity
        if len(page) < PAGE:
            return
        offset += PAGE


def device_of(entity: Entity) -> str:
    """The device behind an entity (the privacy unit): its `refDevice`, else the entity."""
    for instance in entity.get("attrs", {}).get(REF_DEVICE, []):
        target = instance.get("object")
        if isinstance(target, str) and target:
            return target
    return str(entity["id"])


def point(entity: Entity) -> tuple[float, float] | None:
    """The entity's position (the centroid of its location), as (longitude, latitude)."""
    for instance in entity.get("attrs", {}).get(LOCATION, []):
        try:
            centre = shape(instance["value"]).centroid
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if not centre.is_empty:
            return float(centre.x), float(centre.y)
    return None


def readings(temporal: TemporalStore, tenant: str, entity: Entity, iri: str,
             start: datetime | None = None, end: datetime | None = None,
             last_n: int | None = None) -> list[Reading]:
    """The attribute's recorded values, oldest first, within [start, end) when given (only the
    newest `last_n` when given)."""
    if start is not None and end is not None:
        query = tl.TemporalQuery(timerel="between", time_at=start, end_time_at=end)
    elif start is not None:
        query = tl.TemporalQuery(timerel="after", time_at=start)
    elif end is not None:
        query = tl.TemporalQuery(timerel="before", time_at=end)
    else:
        query = tl.TemporalQuery()
    if last_n is not None:
        query = replace(query, last_n=last_n)
    series = temporal.read(tenant, entity, query, [iri]).get(iri)
    if series is None:
        return []
    out = []
    for row in series.items:
        if isinstance(row, tl.HistoryRow) and not row.deleted:
            instance = row.instance
            out.append(Reading(entity["id"], row.time, instance.get("value"),
                               instance.get("unitCode")))
    return out
