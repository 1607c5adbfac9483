"""Who is who in the demo: departments, the district's datasets, service accounts for the twin
and the device simulator, demo people with passwords, and one grant. Idempotent: a second run
finds everything in the store and adds only what is missing (new service tokens each run).

    DATA/demo/accounts.json   the demo people's names and passwords (mode 600, printed once)
    DATA/demo/tokens/*.token  bearer tokens of the service accounts (mode 600, read by children)
    DATA/demo/edge.token      the edge agent's credential (CITYHUB_EDGE_TOKEN of the hub)

What each person sees follows the shipped policies (governance/policies/access.cedar): the
citizen public data only; the transport officer also internal data (junctions, sensors,
alerts) but not the energy department's sensitive meters; the planning officer sees the meters
through a grant, when signed in with the grant's purpose; the ecology officer has no grant.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cityhub.api.governance_state import seed_catalogue
from cityhub.governance.catalogue import SqlCatalogue
from cityhub.governance.datasets import Dataset, Tier
from cityhub.governance.identity import PrincipalKind
from cityhub.governance.issuer import BuiltinIssuer
from cityhub.governance.memory_catalogue import expand_name
from cityhub.governance.passwords import Passwords
from cityhub.governance.sharing import SharingStore
from cityhub.store.database import Database

DEPARTMENTS = (("transport", "Transport department"), ("ecology", "Ecology and environment"),
               ("energy", "Energy department"), ("planning", "Urban planning"),
               ("operations", "City operations centre"))
# The district's own layers, beside the packaged datasets (air, traffic flow, energy, ...).
DATASETS = (
    ("road-network", "Road network and congestion", "RoadSegment", "transport", Tier.PUBLIC),
    ("congestion-index", "City congestion index", "CongestionIndex", "transport", Tier.PUBLIC),
    ("traffic-signals", "Junctions and signal states", "TrafficSignal", "transport",
     Tier.INTERNAL),
    ("sensors", "Sensor network", "Device", "operations", Tier.INTERNAL),
    ("alerts", "Operational alerts", "Alert", "operations", Tier.INTERNAL),
)
TWIN, DEVICES = "demo-twin", "demo-devices"
SERVICES = ((TWIN, "transport"), (DEVICES, "operations"))
DEVICE_OWNER = "operations"
GRANT_DATASET, GRANT_PURPOSE = "energy-meters", "district-energy-plan"
SERVICE_TOKEN_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class Person:
    name: str
    kind: PrincipalKind
    department: str
    clearance: Tier
    role: str  # what the person sees in the demo


PEOPLE = (
    Person("citizen", PrincipalKind.CITIZEN, "", Tier.PUBLIC, "public data only"),
    Person("transport.officer", PrincipalKind.STAFF, "transport", Tier.INTERNAL,
           "transport department: public and internal data, no energy meters"),
    Person("planning.officer", PrincipalKind.STAFF, "planning", Tier.INTERNAL,
           f"planning department: energy meters through a grant (purpose {GRANT_PURPOSE})"),
    Person("ecology.officer", PrincipalKind.STAFF, "ecology", Tier.INTERNAL,
           "ecology department: no grant, no energy meters"),
)


@dataclass(frozen=True)
class DemoIdentity:
    tokens: dict[str, Path]  # service account -> its token file
    edge_token: str
    accounts: Path  # the people's passwords
    passwords: dict[str, str]


def _private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)
    return path


def _secret(path: Path) -> str:
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    return _private(path, secrets.token_urlsafe(32)).read_text()


def prepare(db: Database, issuer_name: str, audience: str, root: Path,
            datasets_file: Path | None = None, tenant: str = "") -> DemoIdentity:
    """Make (or find) everything the demo's identities need; see the module docstring.
    The packaged (or configured) catalogue is seeded first, as the hub does on first start."""
    issuer = BuiltinIssuer(db, issuer_name, audience)
    issuer.ensure_key()
    known = {name for name, _ in issuer.departments()}
    for name, title in DEPARTMENTS:
        if name not in known:
            issuer.add_department(name, title)
    catalogue = SqlCatalogue(db)
    seed_catalogue(catalogue, datasets_file)
    for dataset_id, title, type_, owner, tier in DATASETS:
        if catalogue.get(dataset_id, tenant) is None:
            catalogue.put(Dataset(id=dataset_id, title=title, entity_type=expand_name(type_),
                                  owner=owner, tier=tier, tenant=tenant))
    for name, department in SERVICES:
        if issuer.account(name) is None:
            issuer.add_account(name, PrincipalKind.SERVICE, department, (), Tier.INTERNAL)
    tokens = {name: _private(root / "tokens" / f"{name}.token",
                             issuer.issue(name, lifetime=SERVICE_TOKEN_LIFETIME))
              for name, _ in SERVICES}
    accounts = root / "accounts.json"
    stored: dict[str, str] = json.loads(accounts.read_text()) if accounts.is_file() else {}
    passwords = Passwords(db)
    for person in PEOPLE:
        if issuer.account(person.name) is None:
            issuer.add_account(person.name, person.kind, person.department, (),
                               person.clearance)
        if person.name not in stored or not passwords.has(person.name):
            stored[person.name] = secrets.token_urlsafe(12)
            passwords.set(person.name, stored[person.name])
    _private(accounts, json.dumps(stored, indent=1))
    _ensure_grant(db, catalogue, tenant)
    return DemoIdentity(tokens, _secret(root / "edge.token"), accounts, stored)


def _ensure_grant(db: Database, catalogue: SqlCatalogue, tenant: str) -> None:
    """The planning department's grant on the energy meters (asked and approved once)."""
    sharing = SharingStore(db)
    now = datetime.now(UTC)
    if any(g.dataset == GRANT_DATASET and g.purpose == GRANT_PURPOSE
           for g in sharing.live_grants(tenant, "planning", now)):
        return
    dataset = catalogue.get(GRANT_DATASET, tenant)
    if dataset is None:
        return  # a custom catalogue without the energy meters: nothing to grant
    request = sharing.ask(tenant=tenant, dataset=dataset.id, owner=dataset.owner,
                          department="planning", requester="planning.officer",
                          purpose=GRANT_PURPOSE, attributes=(), area=None,
                          duration=timedelta(days=365))
    sharing.approve(request.id, decided_by=f"{dataset.owner} (demo)")
