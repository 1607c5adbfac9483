"""Access to the hub's own services (audit ledger, privacy aggregates, quality scores, device
registry), decided by the policy decision point like data access is.

Each route names an action of `policies/services.cedar` and a resource: the audit ledger, the
device registry of a department, or a catalogued dataset. The request principal's `Guard`
decides (and records the decision in the audit ledger); a refusal is a 403 problem. With
authentication off every request runs as the local operator and is allowed.
"""

from __future__ import annotations

from fastapi import Request

from cityhub.api.auth import current_principal, request_guard
from cityhub.governance.datasets import Dataset, Tier
from cityhub.governance.guard import AccessDenied, resource_for
from cityhub.governance.identity import Principal
from cityhub.governance.policy import Resource

AUDIT_LEDGER = "cityhub:audit-ledger"
DEVICE_REGISTRY = "cityhub:devices"
IDENTITY_STORE = "cityhub:identity"


def ledger_resource() -> Resource:
    return Resource(AUDIT_LEDGER, "cityhub", Tier.CORE)


def identity_resource() -> Resource:
    """The built-in issuer's accounts (disable, enable, remove: `administer`)."""
    return Resource(IDENTITY_STORE, "cityhub", Tier.CORE)


def registry_resource(tenant: str, owner: str = "") -> Resource:
    """The device registry of `owner` (a department), or the whole tenant's when empty."""
    return Resource(DEVICE_REGISTRY, owner, Tier.INTERNAL, tenant)


def dataset_resource(tenant: str, dataset: Dataset) -> Resource:
    return resource_for(tenant, dataset, "")


def allow(request: Request, action: str, resource: Resource) -> Principal:
    """The request principal if the policies permit `action` on `resource`, else 403."""
    guard = request_guard(request)
    principal = current_principal(request)
    if guard is None:
        return principal
    decision = guard.decide(action, resource)
    if not decision.allowed:
        raise AccessDenied(f"{principal.key} may not {action} {resource.dataset} "
                           f"(decided by {decision.rule})")
    return principal


def may(request: Request, action: str, resource: Resource) -> bool:
    """Whether the policies permit it (for lists that hold only what the caller may see)."""
    try:
        allow(request, action, resource)
    except AccessDenied:
        return False
    return True
