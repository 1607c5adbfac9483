"""Schemathesis against the hub's own OpenAPI: no input makes the NGSI-LD API answer with a
server error, and every 4xx is an RFC 9457 problem (application/problem+json with type, title
and status).

The hub runs under uvicorn on a free loopback port with a throwaway SQLite store. Nothing leaves
the machine: remote @context URLs resolve through an in-memory transport (every URL serves an
empty @context) and notification delivery is off. A few entities and one @context are seeded,
and generated path parameters are sometimes swapped for their ids, so reads, patches and deletes
reach existing resources too; the seed is upserted again before every such request.

The run is bounded and reproducible: derandomized Hypothesis, a fixed number of examples per
operation (`FUZZ_EXAMPLES`), no deadline.
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from cityhub.api import context_fetch
from cityhub.api.app import create_app
from cityhub.config import Settings

FUZZ_EXAMPLES = 25
API = "/ngsi-ld/v1"
PROBLEM = "application/problem+json"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
SEED_ENTITIES = [
    {
        "id": "urn:ngsi-ld:FuzzCar:1",
        "type": "FuzzCar",
        "speed": {"type": "Property", "value": 42, "unitCode": "KMH",
                  "observedAt": "2026-01-01T00:00:00Z"},
        "name": {"type": "LanguageProperty", "languageMap": {"en": "car", "es": "coche"}},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2, 41]}},
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:FuzzPerson:1"},
    },
    {"id": "urn:ngsi-ld:FuzzPerson:1", "type": "FuzzPerson", "age": 30, "tags": ["a", "b"]},
]
SEED_ATTRIBUTES = ["speed", "name", "location", "owner", "age"]
SEED_CONTEXT = {"@context": {"FuzzCar": "https://example.org/FuzzCar"}}
# Filled in by the `hub` fixture: the local id the hub gave the seeded @context.
SEEDED_CONTEXT_IDS: list[str] = []

# Fuzzing with valid and invalid data. The coverage phase is off: its boundary cases (thousands
# per operation, 10,000-entity batches) take minutes; the seeded fuzzing phase keeps this bounded.
CONFIG = schemathesis.Config.from_dict({
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    "generation": {"mode": "all"},
})
SCHEMA = schemathesis.openapi.from_dict(
    # The schema only: this app never starts, so its settings are never used.
    create_app(Settings(data_dir=Path("unused"))).openapi(),
    config=CONFIG,
).include(path_regex=f"^{API}/")


def _empty_context(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"@context": {}},
                          headers={"Content-Type": "application/ld+json"})


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run `app` under uvicorn on a free loopback port, offline (remote @contexts are empty);
    yields its base URL and stops it afterwards."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning",
                                           http="h11", ws="none", loop="asyncio"))
    offline = functools.partial(context_fetch.HttpxFetcher,
                                transport=httpx.MockTransport(_empty_context))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(context_fetch, "HttpxFetcher", offline)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        assert server.started, "the hub did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A client of the running hub (its base_url is the hub's)."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(data_dir=data_dir, store_url=f"sqlite:///{data_dir / 'hub.db'}",
                              public_url="http://testserver", notify_workers=0,
                              auth="disabled"))
    with serving(app) as base, httpx.Client(base_url=base) as client:
        _seed(client)
        added = client.post(API + "/jsonldContexts", json=SEED_CONTEXT)
        assert added.status_code == 201, added.text
        SEEDED_CONTEXT_IDS[:] = [added.headers["Location"].rstrip("/").rsplit("/", 1)[-1]]
        yield client


def _seed(client: httpx.Client) -> None:
    response = client.post(API + "/entityOperations/upsert", json=SEED_ENTITIES)
    assert response.status_code in (201, 204), response.text


def _swap(values: dict[str, Any], name: str, choices: list[str]) -> st.SearchStrategy[Any]:
    """Keep the generated value or, as often, use one of the seeded resources."""
    if not values or name not in values:
        return st.just(values)
    return st.one_of(st.just(values), st.sampled_from(choices).map(
        lambda choice: {**values, name: choice}))


@SCHEMA.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[Any]:
    ids = [entity["id"] for entity in SEED_ENTITIES]
    return _swap(path_parameters, "entityId", ids).flatmap(
        lambda values: _swap(values, "attrId", SEED_ATTRIBUTES)).flatmap(
        lambda values: _swap(values, "type", ["FuzzCar", "FuzzPerson"])).flatmap(
        lambda values: _swap(values, "contextId", SEEDED_CONTEXT_IDS))


def no_server_error(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """`not_a_server_error`, less the spec's one 5xx for bad input: a 503 LdContextNotAvailable
    for an @context URL that cannot be fetched (this hub fetches any http(s) URL, no other)."""
    if response.status_code == 503 and _problem_type(response) == ERRORS + "LdContextNotAvailable":
        return
    not_a_server_error(ctx, response, case)


def _problem_type(response: schemathesis.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("type") if isinstance(body, dict) else None


def problem_details(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every client error is an RFC 9457 problem with type, title and status."""
    if not 400 <= response.status_code < 500:
        return
    media = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert media == PROBLEM, f"{response.status_code} answered as {media!r}, not {PROBLEM}"
    body = response.json()
    assert isinstance(body, dict), "a problem is a JSON object"
    missing = {"type", "title", "status"} - body.keys()
    assert not missing, f"problem lacks {sorted(missing)}"
    assert body["status"] == response.status_code, "problem status differs from the HTTP status"


ALWAYS = [no_server_error, problem_details]
# For operations whose answers are documented (`api.openapi.responses` adds a `default` problem),
# the answers must also match the documented status codes, media types and schemas.
DOCUMENTED = [status_code_conformance, content_type_conformance, response_schema_conformance]


@SCHEMA.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(hub: httpx.Client, case: schemathesis.Case) -> None:
    if {"entityId", "attrId", "type"} & set(case.path_parameters or {}):
        _seed(hub)
    documented = "default" in case.operation.definition.raw.get("responses", {})
    case.call_and_validate(
        base_url=str(hub.base_url).rstrip("/"),
        checks=ALWAYS + DOCUMENTED if documented else ALWAYS,
    )
