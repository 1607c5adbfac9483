"""Schemathesis against the OpenAPI with authentication on: no input, sent with a token of a
department reading another's data under a grant (the guarded, minimising paths), makes the
hub answer with a server error; every client error is a problem detail. The catalogue,
sharing and identity routes are fuzzed with a steward's token.

Same set-up as tests/api/test_openapi_fuzz.py: uvicorn on a free loopback port, a throwaway
SQLite store, remote @context URLs served by an in-memory transport, no notifications;
derandomized and bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from cityhub.api.app import create_app
from cityhub.config import Settings
from cityhub.governance.datasets import Dataset, Tier
from tests.api.test_openapi_fuzz import (
    DOCUMENTED,
    no_server_error,
    problem_details,
    serving,
)
from tests.governance.conftest import ACCOUNTS, PARKING, spot

pytestmark = pytest.mark.slow
EXAMPLES = 4  # per operation: ~56 operations, bounded time
PURPOSE = "fuzzing"
CONFIG = schemathesis.Config.from_dict({
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    "generation": {"mode": "all"},
})
SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(data_dir=Path("unused"))).openapi(), config=CONFIG)
HEADERS: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a running, seeded hub with authentication on."""
    data_dir = tmp_path_factory.mktemp("access-fuzz")
    app = create_app(Settings(data_dir=data_dir, store_url=f"sqlite:///{data_dir / 'hub.db'}",
                              public_url="http://testserver", notify_workers=0))
    with serving(app) as base:
        _seed(app)
        written = httpx.post(f"{base}/ngsi-ld/v1/entityOperations/upsert",
                             headers=HEADERS["device"], json=[spot(1), spot(2)])
        assert written.status_code == 201, written.text
        yield base


def _seed(app: object) -> None:
    access = app.state.access  # type: ignore[attr-defined]
    issuer = access.issuer
    for name in ("transport", "ecology", "bureau"):
        issuer.add_department(name)
    for subject, kind, department, roles, clearance in ACCOUNTS:
        issuer.add_account(subject, kind, department, roles, clearance)
    access.catalogue.put(Dataset("parking", "Parking", PARKING, "transport", Tier.SENSITIVE))
    asked = access.sharing.ask(
        tenant="", dataset="parking", owner="transport", department="ecology",
        requester="eric", purpose=PURPOSE,
        attributes=("https://uri.etsi.org/ngsi-ld/default-context/status",), area=None,
        duration=timedelta(days=1))
    access.sharing.approve(asked.id, decided_by="tina")
    HEADERS["reader"] = {"Authorization": f"Bearer {issuer.issue('eric')}",
                         "Cityhub-Purpose": PURPOSE}
    HEADERS["steward"] = {"Authorization": f"Bearer {issuer.issue('stella')}"}
    HEADERS["device"] = {"Authorization": f"Bearer {issuer.issue('sensor-1')}"}


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error_with_auth_on(hub: str, case: schemathesis.Case) -> None:
    path = case.operation.path
    who = "reader" if path.startswith("/ngsi-ld/") else "steward"
    case.call_and_validate(base_url=hub, headers=HEADERS[who],
                           checks=[no_server_error, problem_details, *DOCUMENTED])
