"""The data steward's report: for one dataset, who used it, when, for what and under which grant,
read from the audit ledger (every entry carries its ledger index, so it can be proven)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cityhub.governance.ledger import Ledger


@dataclass
class Use:
    """Events of one actor, for one purpose, under one grant, with one action."""

    actor: str
    department: str | None
    action: str
    purpose: str | None
    grant: str | None
    count: int = 0
    first: str = ""
    last: str = ""
    decisions: dict[str, int] = field(default_factory=dict)
    indexes: list[int] = field(default_factory=list)


def steward_report(ledger: Ledger, tenant: str, dataset: str,
                   recent: int = 50) -> dict[str, Any]:
    """Uses of `dataset` grouped by (actor, department, action, purpose, grant), oldest first,
    plus the `recent` latest events."""
    records = ledger.dataset_records(tenant, dataset)
    uses: dict[tuple[Any, ...], Use] = {}
    for index, record in records:
        key = (str(record.get("actor")), record.get("department"), str(record.get("action")),
               record.get("purpose"), record.get("grant"))
        use = uses.get(key)
        if use is None:
            use = uses[key] = Use(key[0], key[1], key[2], key[3], key[4],
                                  first=str(record.get("at")))
        use.count += 1
        use.last = str(record.get("at"))
        if record.get("decision"):
            decision = str(record["decision"])
            use.decisions[decision] = use.decisions.get(decision, 0) + 1
        if len(use.indexes) < 20:
            use.indexes.append(index)
    return {
        "dataset": dataset,
        "tenant": tenant,
        "events": len(records),
        "actors": sorted({str(r.get("actor")) for _, r in records}),
        "uses": [vars(u) for u in uses.values()],
        "recent": [{"index": i, **r} for i, r in records[-recent:]] if recent else [],
    }
