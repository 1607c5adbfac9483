"""Enforcement for one request: every entity read or written on behalf of a principal passes
the policy decision point, is minimised to what a grant allows, and is put on the record.

`Guard` decides (memoised per dataset and action within the request) and audits;
`cityhub.governance.guarded` wraps the store, the entity service and the history reader in it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shapely.geometry import box, shape

from cityhub.governance.catalogue import UNCATALOGUED_PREFIX, SqlCatalogue
from cityhub.governance.datasets import Dataset, Tier
from cityhub.governance.events import AuditEvent, AuditSink
from cityhub.governance.identity import Principal
from cityhub.governance.policy import AccessContext, Decision, PolicyDecisionPoint, Resource
from cityhub.governance.sharing import Grant, SharingStore
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.model import LOCATION, Entity

log = logging.getLogger(__name__)
UNCATALOGUED_TIER = Tier.INTERNAL  # data nobody catalogued yet: not public


class AccessDenied(NgsiLdError):
    kind = "AccessDenied"
    status = 403
    title = "Access denied"


@dataclass(frozen=True, slots=True)
class View:
    """What a reader may see of a dataset: every attribute, or those of a grant (and area)."""

    decision: Decision
    resource: Resource
    grant: Grant | None = None

    @property
    def attributes(self) -> frozenset[str] | None:
        if self.grant is None or not self.grant.attributes:
            return None
        return frozenset(self.grant.attributes)


def resource_for(tenant: str, dataset: Dataset | None, entity_type: str) -> Resource:
    if dataset is None:
        return Resource(UNCATALOGUED_PREFIX + entity_type, "", UNCATALOGUED_TIER, tenant,
                        entity_type)
    return Resource(dataset.id, dataset.owner, dataset.tier, tenant, dataset.entity_type,
                    dataset.attributes)


def _in_area(entity: Entity, area: tuple[float, float, float, float]) -> bool:
    instances = entity["attrs"].get(LOCATION) or []
    for instance in instances:
        try:
            if shape(instance.get("value")).intersects(box(*area)):
                return True
        except (ValueError, TypeError, AttributeError, KeyError):
            continue
    return False


class Guard:
    """Decisions and minimisation for one principal in one request."""

    def __init__(self, principal: Principal, pdp: PolicyDecisionPoint, catalogue: SqlCatalogue,
                 sharing: SharingStore, audit: AuditSink, context: AccessContext,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.principal = principal
        self.pdp = pdp
        self.catalogue = catalogue
        self.sharing = sharing
        self.audit = audit
        self.context = context
        self.clock = clock
        self._decisions: dict[tuple[str, str, str, bool], Decision] = {}
        self._grants: dict[str, list[Grant]] = {}
        self._views: dict[tuple[str, str], View | None] = {}

    # -- decisions ---------------------------------------------------------------------------

    def resource(self, tenant: str, entity: Entity) -> Resource:
        dataset = self.catalogue.dataset_of(tenant, entity)
        types = entity.get("type") or [""]
        return resource_for(tenant, dataset, types[0] if dataset is None else "")

    def decide(self, action: str, resource: Resource, grant: Grant | None = None) -> Decision:
        key = (resource.tenant, resource.dataset, action, grant is not None)
        decision = self._decisions.get(key)
        if decision is None:
            context = self.context
            if grant is not None:
                context = AccessContext(grant.purpose, True, context.source,
                                        context.posture, context.hour)
            decision = self._decisions[key] = self.pdp.decide(self.principal, action, resource,
                                                              context)
            log.info("event=policy_decision principal=%s action=%s dataset=%s tenant=%s "
                     "decision=%s rule=%s purpose=%s grant=%s posture=%s", self.principal.key,
                     action, resource.dataset, resource.tenant,
                     "allow" if decision.allowed else "deny", decision.rule,
                     context.purpose or "-", grant.id if grant else "-",
                     context.posture.describe())
            self.audit.record(AuditEvent(
                actor=self.principal.key, action="policy.decide", subject=resource.dataset,
                tenant=resource.tenant, department=self.principal.department or None,
                dataset=resource.dataset, purpose=self.context.purpose or None,
                grant=grant.id if grant else None,
                decision="allow" if decision.allowed else "deny", rule=decision.rule,
                detail={"action": action, "tier": resource.tier.value,
                        "source": self.context.source,
                        "posture": self.context.posture.describe()}))
        return decision

    def _grant_for(self, resource: Resource) -> Grant | None:
        department = self.principal.department
        if not department or resource.owner == "":
            return None
        grants = self._grants.get(resource.tenant)
        if grants is None:
            grants = self._grants[resource.tenant] = self.sharing.live_grants(
                resource.tenant, department, self.clock())
        purpose = self.context.purpose
        return next((g for g in grants if g.dataset == resource.dataset
                     and (g.purpose == purpose)), None)

    def view(self, resource: Resource) -> View | None:
        """How the principal may read `resource`: fully, through a grant, or not at all."""
        key = (resource.tenant, resource.dataset)
        if key in self._views:
            return self._views[key]
        view: View | None = None
        decision = self.decide("read", resource)
        if decision.allowed:
            view = View(decision, resource)
        else:
            grant = self._grant_for(resource)
            if grant is not None:
                granted = self.decide("read", resource, grant)
                if granted.allowed:
                    view = View(granted, resource, grant)
        self._views[key] = view
        return view

    def denial(self, resource: Resource, action: str) -> AccessDenied:
        rule = self.decide(action, resource).rule
        hint = (" (ask its owner for a grant and declare its purpose with the Cityhub-Purpose "
                "header)" if action == "read" and resource.owner else "")
        return AccessDenied(f"{self.principal.key} may not {action} dataset {resource.dataset} "
                            f"(rule {rule}){hint}")

    # -- reads -------------------------------------------------------------------------------

    def readable(self, tenant: str, entity: Entity) -> Entity | None:
        """The entity as the principal may see it (minimised), or None."""
        resource = self.resource(tenant, entity)
        view = self.view(resource)
        if view is None:
            return None
        if view.grant is not None and view.grant.area is not None and not _in_area(
                entity, view.grant.area):
            return None
        allowed = view.attributes
        if allowed is not None:
            entity = {**entity, "attrs": {k: v for k, v in entity["attrs"].items()
                                          if k in allowed}}
        if resource.tier is not Tier.PUBLIC:
            self._record("entity.read", tenant, entity["id"], resource, view)
        return entity

    def readable_attributes(self, tenant: str, entity: Entity) -> frozenset[str] | None:
        """None: every attribute; else the granted ones (empty when nothing is readable)."""
        view = self.view(self.resource(tenant, entity))
        if view is None:
            return frozenset()
        return view.attributes

    # -- writes ------------------------------------------------------------------------------

    def check_write(self, tenant: str, entity: Entity, action: str = "write") -> None:
        resource = self.resource(tenant, entity)
        decision = self.decide(action, resource)
        if not decision.allowed:
            raise self.denial(resource, action)
        self._record(f"entity.{action}", tenant, entity["id"], resource, None, decision)

    def _record(self, action: str, tenant: str, entity_id: str, resource: Resource,
                view: View | None, decision: Decision | None = None) -> None:
        decision = decision or (view.decision if view else None)
        self.audit.record(AuditEvent(
            actor=self.principal.key, action=action, subject=entity_id, tenant=tenant,
            department=self.principal.department or None, dataset=resource.dataset,
            purpose=self.context.purpose or None,
            grant=view.grant.id if view and view.grant else None,
            decision="allow", rule=decision.rule if decision else None))
