"""The policy decision point: default deny, the deciding rule named, files reloaded on change
without restart, a broken edit leaving the last good policies in force."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cityhub.governance.datasets import Tier
from cityhub.governance.identity import Principal, PrincipalKind
from cityhub.governance.policy import (
    DEFAULT_DENY,
    AccessContext,
    PolicyDecisionPoint,
    PolicyError,
    Resource,
)
from cityhub.governance.posture import Posture

STAFF = Principal("ann", PrincipalKind.STAFF, "ecology", clearance=Tier.SENSITIVE)
DEVICE = Principal("d1", PrincipalKind.DEVICE, "transport")
SENSITIVE = Resource("parking", "transport", Tier.SENSITIVE)


@pytest.fixture
def pdp() -> PolicyDecisionPoint:
    return PolicyDecisionPoint()


@pytest.mark.parametrize(("principal", "action", "resource", "context", "allowed", "rule"), [
    (STAFF, "read", SENSITIVE, AccessContext(), False, DEFAULT_DENY),
    (STAFF, "read", SENSITIVE, AccessContext(granted=True), True, "granted-read"),
    (STAFF, "write", SENSITIVE, AccessContext(granted=True), False, DEFAULT_DENY),
    (STAFF, "read", Resource("p", "transport", Tier.PUBLIC), AccessContext(), True,
     "public-read,staff-read-internal"),
    (DEVICE, "write", SENSITIVE, AccessContext(), True, "device-writes-own-department"),
    (DEVICE, "write", SENSITIVE, AccessContext(posture=Posture("d1", True, "ok")), True,
     "device-writes-own-department"),
    (DEVICE, "write", SENSITIVE, AccessContext(posture=Posture("d1", True, "revoked")), False,
     "revoked-device"),
    (DEVICE, "write", SENSITIVE, AccessContext(posture=Posture("d1", True, "ok", stale=True)),
     False, "unhealthy-device-cannot-write"),
    (DEVICE, "write", SENSITIVE, AccessContext(posture=Posture("d1", True, "faulty")), False,
     "unhealthy-device-cannot-write"),
    (STAFF, "read", SENSITIVE, AccessContext(granted=True,
                                             posture=Posture("d1", True, "revoked")),
     False, "revoked-device"),
    (DEVICE, "read", Resource("p", "transport", Tier.INTERNAL), AccessContext(), False,
     DEFAULT_DENY),
])
def test_shipped_policies(pdp: PolicyDecisionPoint, principal: Principal, action: str,
                          resource: Resource, context: AccessContext, allowed: bool,
                          rule: str) -> None:
    decision = pdp.decide(principal, action, resource, context)
    assert (decision.allowed, decision.rule) == (allowed, rule)


def _write(path: Path, text: str, mtime: float) -> None:
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def test_policies_reload_when_a_file_changes(tmp_path: Path) -> None:
    policy = tmp_path / "city.cedar"
    _write(policy, '@id("nobody") forbid (principal, action, resource);', 1_000)
    pdp = PolicyDecisionPoint(tmp_path, check_every_s=0.0)
    assert pdp.decide(STAFF, "read", SENSITIVE, AccessContext()).rule == "nobody"
    _write(policy, '@id("everyone-reads") permit (principal, action == '
                   'CityHub::Action::"read", resource);', 2_000)
    decision = pdp.decide(STAFF, "read", SENSITIVE, AccessContext())
    assert decision.allowed
    assert decision.rule == "everyone-reads"
    _write(policy, "permit (principal, action, resource", 3_000)  # broken edit
    assert pdp.decide(STAFF, "read", SENSITIVE, AccessContext()).rule == "everyone-reads"


def test_a_broken_policy_folder_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "bad.cedar").write_text("permit (principal,")
    with pytest.raises(PolicyError):
        PolicyDecisionPoint(tmp_path)
    with pytest.raises(PolicyError):
        PolicyDecisionPoint(tmp_path / "missing")


def test_policies_see_the_resource_attributes_and_the_context(tmp_path: Path) -> None:
    """A declarative rule on what the dataset holds (its declared attributes, by short name),
    where the request comes from and when."""
    (tmp_path / "city.cedar").write_text(
        '@id("no-plates-off-site") forbid (principal, action, resource) when {'
        ' resource.attributes.contains("plate") && context.source != "10.0.0.1" };\n'
        '@id("office-hours") permit (principal, action == CityHub::Action::"read", resource)'
        ' when { context.hour >= 8 && context.hour < 18 };')
    pdp = PolicyDecisionPoint(tmp_path)
    plates = Resource("parking", "transport", Tier.SENSITIVE, attributes=(
        "https://uri.etsi.org/ngsi-ld/default-context/plate",
        "https://uri.etsi.org/ngsi-ld/location"))
    status = Resource("occupancy", "transport", Tier.SENSITIVE, attributes=(
        "https://uri.etsi.org/ngsi-ld/default-context/status",))
    day, night = AccessContext(source="10.0.0.9", hour=9), AccessContext(hour=22)
    assert pdp.decide(STAFF, "read", status, day).rule == "office-hours"
    assert pdp.decide(STAFF, "read", status, night).rule == DEFAULT_DENY
    refused = pdp.decide(STAFF, "read", plates, day)
    assert (refused.allowed, refused.rule) == (False, "no-plates-off-site")
    on_site = pdp.decide(STAFF, "read", plates, AccessContext(source="10.0.0.1", hour=9))
    assert on_site.allowed
