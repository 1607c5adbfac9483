"""Auditable events: small frozen records with an actor, a UTC time and a subject.

Every auditable action (a read or write of shared or non-public data, a grant decision, a policy
decision) is one `AuditEvent` sent through `AuditSink.record`; the ledger is where they land.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One auditable action.

    `action` is a dotted verb such as `entity.read`, `entity.write`, `grant.approve`,
    `policy.decide`; `subject` names what was touched (an entity id, a dataset id, a grant id).
    """

    actor: str
    action: str
    subject: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    tenant: str = ""
    department: str | None = None
    dataset: str | None = None
    purpose: str | None = None
    grant: str | None = None
    decision: str | None = None
    rule: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class AuditSink(Protocol):
    """Where audit events go (the Merkle ledger in production, a list in unit tests)."""

    def record(self, event: AuditEvent) -> None: ...


class MemorySink:
    """An in-process sink that keeps events in order (unit tests and the embedded demo)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)
