"""Which of the page's layers a principal may read, decided by the governance policies.

Each layer is one entity type, so one decision per layer (the catalogued dataset of that type,
or the uncatalogued internal tier) says whether it is shown: fully, cut to a grant's attributes
and area, or not at all. The decisions go through `governance.guard.Guard`, so they are the
hub's own (Cedar policies, grants, purpose) and each is on the audit record; reading a
non-public layer is recorded as one `entity.read` event for the layer (with the count), not one
per entity.

Anonymous visitors of a hub with authentication on are decided as a citizen: public data only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cityhub.governance.catalogue import SqlCatalogue
from cityhub.governance.datasets import Tier
from cityhub.governance.events import AuditEvent, AuditSink
from cityhub.governance.guard import Guard
from cityhub.governance.identity import Principal, PrincipalKind
from cityhub.governance.policy import AccessContext, PolicyDecisionPoint
from cityhub.governance.sharing import SharingStore
from cityhub.ngsild.model import LOCATION
from cityhub.ngsild.terms import Terms
from cityhub.web.snapshot import LAYERS, Layer, Row

ANONYMOUS = Principal(subject="anonymous", kind=PrincipalKind.CITIZEN,
                      issuer="cityhub:anonymous")
Area = tuple[float, float, float, float]


@dataclass(frozen=True)
class LayerView:
    """How a layer may be shown: the columns kept (None: all; 'geometry' for the location)
    and the area rows must lie in (None: anywhere); `tier` and `dataset` for the record."""

    columns: frozenset[str] | None = None
    area: Area | None = None
    tier: Tier = Tier.PUBLIC
    dataset: str = ""
    grant: str | None = None


FULL = LayerView()


def everything() -> dict[str, LayerView]:
    """Authentication off: every layer, fully."""
    return dict.fromkeys((layer.key for layer in LAYERS), FULL)


@dataclass(frozen=True)
class Governance:
    """What the decisions need from the hub (its access side and audit sink)."""

    pdp: PolicyDecisionPoint
    catalogue: SqlCatalogue
    sharing: SharingStore
    audit: AuditSink


def decide(gov: Governance, principal: Principal, tenant: str, terms: Terms,
           purpose: str, source: str) -> dict[str, LayerView]:
    """The layers `principal` may read (absent: not at all)."""
    guard = Guard(principal, gov.pdp, gov.catalogue, gov.sharing, gov.audit,
                  AccessContext(purpose=purpose, source=source))
    views: dict[str, LayerView] = {}
    for layer in LAYERS:
        probe = {"id": "", "type": [terms.expand_term(layer.type)], "attrs": {}}
        resource = guard.resource(tenant, probe)
        view = guard.view(resource)
        if view is None:
            continue
        grant = view.grant
        allowed = view.attributes
        columns = None if allowed is None else frozenset(
            [name for name, attr in layer.columns if terms.expand_term(attr) in allowed]
            + (["geometry"] if LOCATION in allowed else []))
        views[layer.key] = LayerView(columns, grant.area if grant else None, resource.tier,
                                     resource.dataset, grant.id if grant else None)
    return views


def cut(layer: Layer, view: LayerView, rows: Mapping[str, Row]) -> dict[str, Row]:
    """The rows as the view allows: outside the area dropped, columns not granted blanked."""
    out = dict(rows)
    if view.area is not None and layer.geometry:
        out = {i: r for i, r in out.items() if _inside(layer, r, view.area)}
    if view.columns is not None:
        keep = view.columns
        geometry = "geometry" in keep or not layer.geometry
        out = {i: (r[0] if geometry else None, r[1] if geometry else None,
                   *(v if name in keep else None
                     for (name, _), v in zip(layer.columns, r[2:], strict=True)))
               for i, r in out.items()}
    return out


def _inside(layer: Layer, row: Row, area: Area) -> bool:
    west, south, east, north = area
    if layer.geometry == "point":
        return row[0] is not None and west <= row[0] <= east and south <= row[1] <= north
    flat = row[0] or []
    return any(west <= flat[i] <= east and south <= flat[i + 1] <= north
               for i in range(0, len(flat) - 1, 2))


def record_reads(audit: AuditSink, principal: Principal, tenant: str, purpose: str,
                 views: Mapping[str, LayerView], counts: Mapping[str, int]) -> None:
    """One `entity.read` event per non-public layer read (the page reads whole layers)."""
    for key, view in views.items():
        if view.tier is Tier.PUBLIC or not counts.get(key):
            continue
        audit.record(AuditEvent(
            actor=principal.key, action="entity.read", subject=f"ops-layer:{key}",
            tenant=tenant, department=principal.department or None, dataset=view.dataset,
            purpose=purpose or None, grant=view.grant, decision="allow",
            detail={"entities": counts[key], "via": "/ops/view"}))
