"""Who is asking: the principal a verified token names (staff, service, device or citizen).

A principal carries its department, roles and clearance (a `Tier`: the most protected tier it
may see at all). Claims are read from any OIDC issuer's token with a few common spellings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cityhub.governance.datasets import Tier

TIER_LEVEL = {Tier.PUBLIC: 0, Tier.INTERNAL: 1, Tier.SENSITIVE: 2, Tier.CORE: 3}


class PrincipalKind(StrEnum):
    STAFF = "staff"
    SERVICE = "service"
    DEVICE = "device"
    CITIZEN = "citizen"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated subject. `key` identifies it across issuers (issuer + subject)."""

    subject: str
    kind: PrincipalKind
    department: str = ""
    roles: frozenset[str] = frozenset()
    clearance: Tier = Tier.PUBLIC
    issuer: str = ""
    purpose: str | None = None  # a purpose the token was issued for, if any

    @property
    def key(self) -> str:
        return f"{self.issuer}#{self.subject}" if self.issuer else self.subject

    @property
    def clearance_level(self) -> int:
        return TIER_LEVEL[self.clearance]

    def cedar_attributes(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "department": self.department,
            "roles": sorted(self.roles),
            "clearance": self.clearance_level,
        }


# Used when CITYHUB_AUTH=disabled (loopback experiments and conformance suites only).
LOCAL_OPERATOR = Principal(
    subject="local-operator", kind=PrincipalKind.STAFF, department="",
    roles=frozenset({"steward"}), clearance=Tier.CORE, issuer="cityhub:auth-disabled",
)


class InvalidClaims(ValueError):
    """A token verified, but its claims do not describe a principal."""


def _roles(claims: Mapping[str, Any]) -> frozenset[str]:
    raw = claims.get("roles")
    if raw is None:  # Keycloak's spelling
        realm = claims.get("realm_access")
        raw = realm.get("roles") if isinstance(realm, Mapping) else None
    if isinstance(raw, str):
        raw = raw.split()
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        raise InvalidClaims("roles must be a list of strings")
    return frozenset(raw)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """Read the principal of verified claims: sub, principal_type, department, roles,
    clearance (public/internal/sensitive/core; default public), purpose."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidClaims("the token has no subject (sub)")
    try:
        kind = PrincipalKind(claims.get("principal_type", "staff"))
    except ValueError:
        raise InvalidClaims(
            f"principal_type must be one of {', '.join(k.value for k in PrincipalKind)}"
        ) from None
    department = claims.get("department", "")
    if not isinstance(department, str):
        raise InvalidClaims("department must be a string")
    try:
        clearance = Tier(claims.get("clearance", "public"))
    except ValueError:
        raise InvalidClaims(
            f"clearance must be one of {', '.join(t.value for t in Tier)}"
        ) from None
    purpose = claims.get("purpose")
    issuer = claims.get("iss", "")
    return Principal(
        subject=subject, kind=kind, department=department, roles=_roles(claims),
        clearance=clearance, issuer=issuer if isinstance(issuer, str) else "",
        purpose=purpose if isinstance(purpose, str) else None,
    )
