"""Schemathesis against every API outside NGSI-LD (audit, privacy, quality, catalogue,
sharing, identity, devices, ingestion, the operations centre), with authentication off: no
input makes a server error, every 4xx is an RFC 9457 problem, and every answer has a
documented status code, media type and schema. Runs against the same live hub as the NGSI-LD
fuzzing (uvicorn on a free port, SQLite, nothing leaves the machine). `/ops/events` is left
out: without a token its event stream never ends, so each case waits for the client's
timeout (the access fuzz, with a token, covers it)."""

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
).include(path_regex="^/(?!ngsi-ld/|ops/events)")


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
