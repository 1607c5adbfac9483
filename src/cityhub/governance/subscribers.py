"""Who owns each subscription, so that its notifications carry only what the owner may read
(minimised to the owner's grants, checked again at every delivery: a revoked grant stops the
flow at once)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

from cityhub.governance.catalogue import SqlCatalogue
from cityhub.governance.datasets import Tier
from cityhub.governance.events import AuditSink
from cityhub.governance.guard import Guard
from cityhub.governance.identity import Principal, PrincipalKind
from cityhub.governance.policy import AccessContext, PolicyDecisionPoint
from cityhub.governance.sharing import SharingStore
from cityhub.governance.tables import create_tables
from cityhub.ngsild.errors import ResourceNotFound
from cityhub.ngsild.model import Entity
from cityhub.ngsild.subscription import Subscription
from cityhub.store.database import Database
from cityhub.store.subscriptions import StoredSubscription, SubscriptionStore

MAX_LISTED = 10_000  # subscriptions of a tenant scanned to list one principal's own


def _dump(principal: Principal) -> str:
    doc = asdict(principal)
    doc["roles"] = sorted(principal.roles)
    return json.dumps(doc)


def _load(text: str) -> Principal:
    doc = json.loads(text)
    return Principal(subject=doc["subject"], kind=PrincipalKind(doc["kind"]),
                     department=doc["department"], roles=frozenset(doc["roles"]),
                     clearance=Tier(doc["clearance"]), issuer=doc["issuer"],
                     purpose=doc.get("purpose"))


class SubscriptionOwners:
    """The owner (principal and declared purpose) of each subscription."""

    def __init__(self, db: Database) -> None:
        self.db = db
        create_tables(db)

    def record(self, tenant: str, subscription_id: str, principal: Principal,
               purpose: str) -> None:
        with self.db.transaction(write=True) as conn:
            conn.execute("DELETE FROM gov_subscription_owners WHERE tenant = ? AND "
                         "subscription_id = ?", (tenant, subscription_id))
            conn.execute("INSERT INTO gov_subscription_owners (tenant, subscription_id, "
                         "principal, purpose) VALUES (?, ?, ?, ?)",
                         (tenant, subscription_id, _dump(principal), purpose))

    def owner(self, tenant: str, subscription_id: str) -> tuple[Principal, str] | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT principal, purpose FROM gov_subscription_owners WHERE "
                               "tenant = ? AND subscription_id = ?",
                               (tenant, subscription_id)).fetchone()
        return None if row is None else (_load(row[0]), str(row[1]))


NotificationGate = Callable[[str, str, list[Entity]], list[Entity]]


def notification_gate(owners: SubscriptionOwners, pdp: PolicyDecisionPoint,
                      catalogue: SqlCatalogue, sharing: SharingStore,
                      audit: AuditSink) -> NotificationGate:
    """(tenant, subscription id, entities) -> what the owner may see of them, minimised.
    A subscription with no known owner notifies nothing."""

    def gate(tenant: str, subscription_id: str, entities: list[Entity]) -> list[Entity]:
        owner = owners.owner(tenant, subscription_id)
        if owner is None:
            return []
        principal, purpose = owner
        guard = Guard(principal, pdp, catalogue, sharing, audit,
                      AccessContext(purpose=purpose, source="notification"))
        out = []
        for entity in entities:
            visible = guard.readable(tenant, entity)
            if visible is not None:
                out.append(visible)
        return out

    return gate


class OwnedSubscriptions:
    """The subscription store as one principal sees it: its own subscriptions (all of them
    for stewards); a new subscription records its owner and declared purpose."""

    def __init__(self, inner: SubscriptionStore, owners: SubscriptionOwners,
                 principal: Principal, purpose: str) -> None:
        self.inner = inner
        self.owners = owners
        self.principal = principal
        self.purpose = purpose

    def _mine(self, tenant: str, subscription_id: str) -> bool:
        if "steward" in self.principal.roles:
            return True
        owner = self.owners.owner(tenant, subscription_id)
        return owner is not None and owner[0].key == self.principal.key

    def create(self, tenant: str, subscription: Subscription, now: datetime) -> None:
        self.inner.create(tenant, subscription, now)
        self.owners.record(tenant, subscription.id, self.principal, self.purpose)

    def get(self, tenant: str, subscription_id: str) -> StoredSubscription | None:
        stored = self.inner.get(tenant, subscription_id)
        return stored if stored is not None and self._mine(tenant, subscription_id) else None

    def page(self, tenant: str, limit: int, offset: int) -> tuple[list[StoredSubscription], int]:
        everything, _total = self.inner.page(tenant, MAX_LISTED, 0)
        mine = [s for s in everything if self._mine(tenant, s.subscription.id)]
        return mine[offset:offset + limit], len(mine)

    def _check(self, tenant: str, subscription_id: str) -> None:
        if not self._mine(tenant, subscription_id):
            raise ResourceNotFound(f"subscription {subscription_id} does not exist",
                                   instance=subscription_id)

    def update(self, tenant: str, subscription_id: str,
               change: Callable[[Subscription], Subscription], now: datetime
               ) -> Subscription:
        self._check(tenant, subscription_id)
        return self.inner.update(tenant, subscription_id, change, now)

    def delete(self, tenant: str, subscription_id: str) -> None:
        self._check(tenant, subscription_id)
        self.inner.delete(tenant, subscription_id)
