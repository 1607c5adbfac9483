"""The stored catalogue (scope matching, DCAT-AP export, duties) and the sharing workflow's
rules (narrowing only, one decision, turnaround figures)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.governance.catalogue import SqlCatalogue
from cityhub.governance.datasets import Dataset, Tier
from cityhub.governance.dcat import dcat_catalogue, iso_duration
from cityhub.governance.duties import responsibility_list
from cityhub.governance.sharing import (
    RequestStatus,
    SharingError,
    SharingRequest,
    SharingStore,
    turnaround,
)
from cityhub.store import open_store
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore

VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """The store on each back-end (SQLite, PostgreSQL): the access tables live in both."""
    opened = open_store(store_url)
    yield opened
    opened.close()


def test_entities_belong_to_the_most_specific_dataset(store: SqlStore) -> None:
    catalogue = SqlCatalogue(store.db)
    catalogue.put(Dataset("aq", "Air", VOCAB + "AirQualityObserved", "ecology", Tier.PUBLIC))
    catalogue.put(Dataset("aq-school", "Air at schools", VOCAB + "AirQualityObserved",
                          "education", Tier.SENSITIVE, scope="/schools"))
    def of(scope: list[str] | None) -> str | None:
        entity = {"id": "x", "type": [VOCAB + "AirQualityObserved"], "attrs": {}}
        if scope is not None:
            entity["scope"] = scope
        found = catalogue.dataset_of("", entity)
        return found.id if found else None
    assert of(None) == "aq"
    assert of(["/schools/no1"]) == "aq-school"
    assert of(["/schoolsX"]) == "aq"
    assert catalogue.dataset_of("", {"id": "x", "type": [VOCAB + "Other"], "attrs": {}}) is None
    assert catalogue.dataset_of("other-tenant", {"id": "x", "type": [VOCAB + "AirQualityObserved"],
                                                  "attrs": {}}) is None


def test_dcat_export_describes_each_dataset() -> None:
    dataset = Dataset("aq", "Air quality", VOCAB + "AirQualityObserved", "ecology",
                      Tier.PUBLIC, description="Hourly", update_frequency=timedelta(hours=1),
                      licence="https://creativecommons.org/licenses/by/4.0/")
    doc = dcat_catalogue([dataset], "http://hub")
    assert doc["@type"] == "dcat:Catalog"
    node = doc["dcat:dataset"][0]
    assert node["dct:publisher"]["foaf:name"] == "ecology"
    assert node["dct:accessRights"]["@id"].endswith("/PUBLIC")
    assert node["dct:accrualPeriodicity"]["cityhub:every"] == "PT1H"
    assert node["dct:license"] == {"@id": "https://creativecommons.org/licenses/by/4.0/"}
    assert iso_duration(timedelta(days=1, minutes=5)) == "P1DT5M"


def test_duties_are_met_when_data_is_fresh(store: SqlStore) -> None:
    clock = [T0]
    service = EntityService(store, clock=lambda: clock[0])
    service.create("", {"id": "urn:a:1", "type": [VOCAB + "ParkingSpot"], "attrs": {}})
    datasets = [
        Dataset("parking", "P", VOCAB + "ParkingSpot", "transport", Tier.SENSITIVE,
                update_frequency=timedelta(minutes=15)),
        Dataset("noise", "N", VOCAB + "NoiseLevelObserved", "ecology", Tier.PUBLIC,
                update_frequency=timedelta(hours=1)),
    ]
    fresh = responsibility_list(store, datasets, now=T0 + timedelta(minutes=10))
    assert [(d.dataset, d.met, d.status, d.entities) for d in fresh["transport"]] == [
        ("parking", True, "fresh", 1)]
    assert fresh["ecology"][0].status == "empty"
    assert not fresh["ecology"][0].met
    stale = responsibility_list(store, datasets, now=T0 + timedelta(hours=2))
    assert stale["transport"][0].status == "stale"


def _ask(sharing: SharingStore, **overrides: object) -> SharingRequest:
    fields: dict[str, object] = {
        "tenant": "", "dataset": "parking", "owner": "transport", "department": "ecology",
        "requester": "eric", "purpose": "study", "attributes": ("a", "b"),
        "area": (116.0, 39.0, 117.0, 40.0), "duration": timedelta(days=30), "now": T0}
    fields.update(overrides)
    return sharing.ask(**fields)  # type: ignore[arg-type]


def test_approval_only_narrows(store: SqlStore) -> None:
    sharing = SharingStore(store.db)
    for narrower in ({"attributes": ("c",)}, {"area": (115.0, 39.0, 117.0, 40.0)},
                     {"duration": timedelta(days=31)}, {"attributes": ()}):
        with pytest.raises(SharingError):
            sharing.approve(_ask(sharing).id, decided_by="tina", **narrower)  # type: ignore[arg-type]
    decided, grant = sharing.approve(_ask(sharing).id, decided_by="tina", attributes=("a",),
                                     area=(116.2, 39.5, 116.8, 39.9),
                                     duration=timedelta(days=2), now=T0 + timedelta(hours=5))
    assert decided.status is RequestStatus.APPROVED
    assert decided.grant == grant.id
    assert grant.attributes == ("a",)
    assert grant.expires_at == T0 + timedelta(days=2, hours=5)
    assert sharing.live_grants("", "ecology", T0 + timedelta(days=1)) == [grant]
    assert sharing.live_grants("", "ecology", T0 + timedelta(days=3)) == []
    assert sharing.live_grants("", "transport", T0 + timedelta(days=1)) == []
    with pytest.raises(SharingError):
        sharing.refuse(decided.id, decided_by="tina", reason="changed my mind")


@given(st.lists(st.integers(min_value=0, max_value=30 * 24), min_size=1, max_size=40))
def test_turnaround_figures(hours: list[int]) -> None:
    requests = [SharingRequest(
        id=str(n), tenant="", dataset="d", owner="o", department="x", requester="r",
        purpose="p", attributes=(), area=None, duration_s=1.0, asked_at=T0,
        status=RequestStatus.APPROVED, decided_at=T0 + timedelta(hours=h))
        for n, h in enumerate(hours)]
    figures = turnaround(requests)
    ordered = sorted(hours)
    assert figures.decided == len(hours)
    assert figures.pending == 0
    assert ordered[0] <= figures.median_hours <= ordered[-1]  # type: ignore[operator]
    assert figures.median_hours <= figures.p90_hours or len(hours) < 3  # type: ignore[operator]
    assert sum(1 for h in hours if h <= figures.p90_hours) >= 0.9 * len(hours)  # type: ignore[operator]
    assert figures.within_goal == sum(1 for h in hours if h <= 72) / len(hours)


def test_issuer_accounts_and_keys_persist(store: SqlStore) -> None:
    from cityhub.governance.identity import PrincipalKind
    from cityhub.governance.issuer import BuiltinIssuer, IssuerError

    issuer = BuiltinIssuer(store.db, "urn:test", "cityhub")
    issuer.add_department("transport")
    issuer.add_account("tina", PrincipalKind.STAFF, "transport", ("steward",), Tier.CORE)
    with pytest.raises(IssuerError):
        issuer.add_account("x", PrincipalKind.SERVICE, "")
    first = issuer.ensure_key()
    second = issuer.rotate_key()
    again = BuiltinIssuer(store.db, "urn:test", "cityhub")  # another hub process
    assert {k["kid"] for k in again.jwks()["keys"]} == {first, second}
    tina = again.account("tina")
    assert tina is not None
    assert tina.roles == ("steward",)
    issuer.retire_key(first)
    assert [k["kid"] for k in again.jwks()["keys"]] == [second]
