"""The data-sharing responsibility list: each department's duties (the datasets it owns and how
fresh each must be kept) and whether each is met, computed from the stored entities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cityhub.governance.catalogue import covers
from cityhub.governance.datasets import Dataset
from cityhub.ngsild.query.ast import TypeName
from cityhub.store.port import EntityQuery, Store

PAGE = 1000
MAX_SCANNED = 50_000  # entities read per dataset to find the newest change


@dataclass(frozen=True)
class Duty:
    """One line of the responsibility list."""

    department: str
    dataset: str
    title: str
    tier: str
    update_frequency: timedelta | None
    entities: int
    newest: datetime | None
    met: bool
    status: str  # "fresh", "stale", "empty" or "no freshness duty"


def _stamp(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def freshness(store: Store, dataset: Dataset) -> tuple[int, datetime | None]:
    """How many entities the dataset holds and when the newest one changed."""
    count, newest, offset = 0, None, 0
    while offset < MAX_SCANNED:
        page = store.query(dataset.tenant, EntityQuery(types=TypeName(dataset.entity_type),
                                                       limit=PAGE, offset=offset))
        for entity in page.entities:
            scope = entity.get("scope") or []
            if dataset.scope is not None and not covers(dataset, entity["type"], list(scope)):
                continue
            count += 1
            changed = _stamp(entity.get("modifiedAt"))
            if changed is not None and (newest is None or changed > newest):
                newest = changed
        if len(page.entities) < PAGE:
            break
        offset += PAGE
    return count, newest


def duty(store: Store, dataset: Dataset, now: datetime | None = None) -> Duty:
    now = now or datetime.now(UTC)
    count, newest = freshness(store, dataset)
    if dataset.update_frequency is None:
        met, status = count > 0, "no freshness duty" if count else "empty"
    elif newest is None:
        met, status = False, "empty"
    else:
        met = now - newest <= dataset.update_frequency
        status = "fresh" if met else "stale"
    return Duty(dataset.owner, dataset.id, dataset.title, dataset.tier.value,
                dataset.update_frequency, count, newest, met, status)


def responsibility_list(store: Store, datasets: list[Dataset],
                        now: datetime | None = None) -> dict[str, list[Duty]]:
    """Duties by department, each with whether it is met now."""
    out: dict[str, list[Duty]] = {}
    for dataset in sorted(datasets, key=lambda d: (d.owner, d.id)):
        out.setdefault(dataset.owner, []).append(duty(store, dataset, now))
    return out
