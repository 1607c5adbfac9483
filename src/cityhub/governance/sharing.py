"""The data-sharing workflow: department B asks for a dataset for a stated purpose and
attributes; the owner approves (possibly narrowing attributes, area and duration) or refuses
with a reason. An approval makes a grant, which expires and can be revoked at once.

Grants are read from the database on each use (no cache), so a revocation holds immediately in
every hub process. Asked and decided times are kept, so the turnaround is reported.
"""

from __future__ import annotations

import json
import math
import statistics
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cityhub.governance.tables import create_tables
from cityhub.store.database import Database

TURNAROUND_GOAL = timedelta(days=3)  # seed: 15 days -> 3 days
Area = tuple[float, float, float, float]  # min lon, min lat, max lon, max lat (WGS84)


class SharingError(ValueError):
    """A workflow step that is not allowed (unknown id, already decided, wider than asked)."""


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


@dataclass(frozen=True)
class SharingRequest:
    id: str
    tenant: str
    dataset: str
    owner: str
    department: str  # the asking department
    requester: str
    purpose: str
    attributes: tuple[str, ...]  # expanded IRIs; empty: every attribute
    area: Area | None
    duration_s: float
    asked_at: datetime
    status: RequestStatus = RequestStatus.PENDING
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    grant: str | None = None


@dataclass(frozen=True)
class Grant:
    id: str
    tenant: str
    dataset: str
    department: str
    purpose: str
    attributes: tuple[str, ...]  # empty: every attribute
    area: Area | None
    granted_at: datetime
    expires_at: datetime
    request: str
    granted_by: str
    revoked_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


def _doc(record: SharingRequest | Grant) -> str:
    return json.dumps(asdict(record), default=lambda v: v.isoformat())


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _request(doc: dict[str, Any]) -> SharingRequest:
    return SharingRequest(**{
        **doc, "attributes": tuple(doc["attributes"]),
        "area": tuple(doc["area"]) if doc["area"] else None,
        "asked_at": _time(doc["asked_at"]), "decided_at": _time(doc["decided_at"]),
        "status": RequestStatus(doc["status"]),
    })


def _grant(doc: dict[str, Any]) -> Grant:
    return Grant(**{
        **doc, "attributes": tuple(doc["attributes"]),
        "area": tuple(doc["area"]) if doc["area"] else None,
        "granted_at": _time(doc["granted_at"]), "expires_at": _time(doc["expires_at"]),
        "revoked_at": _time(doc["revoked_at"]),
    })


def _within(inner: Area, outer: Area) -> bool:
    return (inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2]
            and inner[3] <= outer[3])


class SharingStore:
    """Requests and grants in the hub's database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        create_tables(db)

    def ask(self, *, tenant: str, dataset: str, owner: str, department: str, requester: str,
            purpose: str, attributes: tuple[str, ...], area: Area | None,
            duration: timedelta, now: datetime | None = None) -> SharingRequest:
        if not purpose.strip():
            raise SharingError("a sharing request states its purpose")
        if duration <= timedelta(0):
            raise SharingError("the duration must be positive")
        request = SharingRequest(
            id=f"urn:cityhub:SharingRequest:{uuid.uuid4()}", tenant=tenant, dataset=dataset,
            owner=owner, department=department, requester=requester, purpose=purpose.strip(),
            attributes=tuple(sorted(set(attributes))), area=area,
            duration_s=duration.total_seconds(), asked_at=now or datetime.now(UTC))
        with self.db.transaction(write=True) as conn:
            conn.execute("INSERT INTO gov_sharing_requests (id, tenant, doc, status, asked_at)"
                         " VALUES (?, ?, ?, ?, ?)", (request.id, tenant, _doc(request),
                                                     request.status.value,
                                                     request.asked_at.isoformat()))
        return request

    def get_request(self, request_id: str) -> SharingRequest | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT doc FROM gov_sharing_requests WHERE id = ?",
                               (request_id,)).fetchone()
        return None if row is None else _request(json.loads(row[0]))

    def requests(self, tenant: str) -> list[SharingRequest]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute("SELECT doc FROM gov_sharing_requests WHERE tenant = ? "
                                "ORDER BY asked_at", (tenant,)).fetchall()
        return [_request(json.loads(r[0])) for r in rows]

    def _pending(self, request_id: str) -> SharingRequest:
        request = self.get_request(request_id)
        if request is None:
            raise SharingError(f"no sharing request {request_id}")
        if request.status is not RequestStatus.PENDING:
            raise SharingError(f"request {request_id} was {request.status.value} already")
        return request

    def _save_request(self, request: SharingRequest) -> None:
        with self.db.transaction(write=True) as conn:
            conn.execute("UPDATE gov_sharing_requests SET doc = ?, status = ?, decided_at = ? "
                         "WHERE id = ?", (_doc(request), request.status.value,
                                          request.decided_at.isoformat()
                                          if request.decided_at else None, request.id))

    def approve(self, request_id: str, *, decided_by: str,
                attributes: tuple[str, ...] | None = None, area: Area | None = None,
                duration: timedelta | None = None, now: datetime | None = None
                ) -> tuple[SharingRequest, Grant]:
        """Approve, narrowing what was asked; never widening it."""
        request = self._pending(request_id)
        now = now or datetime.now(UTC)
        granted_attrs = request.attributes if attributes is None else tuple(sorted(set(
            attributes)))
        if request.attributes and not set(granted_attrs) <= set(request.attributes):
            raise SharingError("an approval may narrow the asked attributes, not add to them")
        if request.attributes and not granted_attrs:
            raise SharingError("an approval must keep at least one asked attribute")
        if area is not None and request.area is not None and not _within(area, request.area):
            raise SharingError("the approved area must lie within the asked area")
        granted_area = area if area is not None else request.area
        asked = timedelta(seconds=request.duration_s)
        if duration is not None and (duration > asked or duration <= timedelta(0)):
            raise SharingError("the approved duration must be positive and at most the asked one")
        grant = Grant(
            id=f"urn:cityhub:Grant:{uuid.uuid4()}", tenant=request.tenant,
            dataset=request.dataset, department=request.department, purpose=request.purpose,
            attributes=granted_attrs, area=granted_area, granted_at=now,
            expires_at=now + (duration or asked), request=request.id, granted_by=decided_by)
        decided = replace(request, status=RequestStatus.APPROVED, decided_at=now,
                          decided_by=decided_by, grant=grant.id)
        with self.db.transaction(write=True) as conn:
            conn.execute("INSERT INTO gov_grants (id, tenant, dataset, department, doc, "
                         "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                         (grant.id, grant.tenant, grant.dataset, grant.department, _doc(grant),
                          grant.expires_at.isoformat()))
        self._save_request(decided)
        return decided, grant

    def refuse(self, request_id: str, *, decided_by: str, reason: str,
               now: datetime | None = None) -> SharingRequest:
        if not reason.strip():
            raise SharingError("a refusal gives its reason")
        request = self._pending(request_id)
        decided = replace(request, status=RequestStatus.REFUSED, decided_at=now or datetime.now(
            UTC), decided_by=decided_by, reason=reason.strip())
        self._save_request(decided)
        return decided

    def get_grant(self, grant_id: str) -> Grant | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT doc FROM gov_grants WHERE id = ?", (grant_id,)).fetchone()
        return None if row is None else _grant(json.loads(row[0]))

    def revoke(self, grant_id: str, now: datetime | None = None) -> Grant:
        grant = self.get_grant(grant_id)
        if grant is None:
            raise SharingError(f"no grant {grant_id}")
        if grant.revoked_at is not None:
            return grant
        revoked = replace(grant, revoked_at=now or datetime.now(UTC))
        with self.db.transaction(write=True) as conn:
            conn.execute("UPDATE gov_grants SET doc = ?, revoked_at = ? WHERE id = ?",
                         (_doc(revoked), revoked.revoked_at.isoformat()  # type: ignore[union-attr]
                          , grant_id))
        return revoked

    def grants(self, tenant: str, department: str | None = None) -> list[Grant]:
        sql, params = "SELECT doc FROM gov_grants WHERE tenant = ?", [tenant]
        if department is not None:
            sql, params = sql + " AND department = ?", [*params, department]
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return [_grant(json.loads(r[0])) for r in rows]

    def live_grants(self, tenant: str, department: str, now: datetime) -> list[Grant]:
        """The department's grants in force now (one indexed read: revocation is immediate)."""
        return [g for g in self.grants(tenant, department) if g.live(now)]


@dataclass(frozen=True)
class Turnaround:
    """How long requests wait for a decision (the seed's goal: 3 days instead of 15)."""

    decided: int
    pending: int
    median_hours: float | None
    p90_hours: float | None
    within_goal: float | None  # share of decided requests decided within the goal
    goal_hours: float = TURNAROUND_GOAL.total_seconds() / 3600


def turnaround(requests: list[SharingRequest]) -> Turnaround:
    waits = sorted((r.decided_at - r.asked_at).total_seconds() / 3600
                   for r in requests if r.decided_at is not None)
    pending = sum(1 for r in requests if r.status is RequestStatus.PENDING)
    if not waits:
        return Turnaround(0, pending, None, None, None)
    p90 = waits[max(0, math.ceil(0.9 * len(waits)) - 1)]  # nearest rank
    goal = TURNAROUND_GOAL.total_seconds() / 3600
    return Turnaround(len(waits), pending, statistics.median(waits), p90,
                      sum(1 for w in waits if w <= goal) / len(waits))
