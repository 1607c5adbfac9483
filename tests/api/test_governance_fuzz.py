"""Schemathesis against the governance APIs (/audit, /privacy, /quality): no input makes a
server error, and every 4xx is an RFC 9457 problem. Runs against the same live hub as the
NGSI-LD fuzzing (uvicorn on a free port, SQLite, nothing leaves the machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cityhub.api.app import create_app
from cityhub.config import Settings
from tests.api.test_openapi_fuzz import (
    CONFIG,
    DOCUMENTED,
    hub,
    no_server_error,
    problem_details,
)

__all__ = ["hub"]  # the live hub fixture, shared with the NGSI-LD fuzzing

SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(data_dir=Path("unused"))).openapi(), config=CONFIG,
).include(path_regex="^/(audit|privacy|quality)")


@SCHEMA.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[Any]:
    """Often ask about a catalogued dataset, so that the handlers run past the lookup."""
    if not path_parameters or "dataset" not in path_parameters:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.sampled_from(
        ["air-quality", "traffic-flow", "noise"]).map(
        lambda name: {**path_parameters, "dataset": name}))


@pytest.mark.slow
@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(hub: httpx.Client, case: schemathesis.Case) -> None:
    case.call_and_validate(base_url=str(hub.base_url).rstrip("/"),
                           checks=[no_server_error, problem_details, *DOCUMENTED])
