"""The OpenAPI document says how the hub answers errors: as problem details, a request that
the route's parameters reject as a 400 (never FastAPI's 422 validation body)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api.test_bad_input import assert_problem

PROBLEM = "application/problem+json"


async def _openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


async def test_every_operation_documents_its_errors_as_problem_details(
        client: httpx.AsyncClient) -> None:
    document = await _openapi(client)
    assert "HTTPValidationError" not in json.dumps(document)
    operations = [(method, path, operation) for path, item in document["paths"].items()
                  for method, operation in item.items()]
    assert len(operations) > 60
    for method, path, operation in operations:
        default = operation["responses"].get("default")
        assert default is not None, (method, path)
        assert PROBLEM in default["content"], (method, path)
    schemas = document["components"]["schemas"]
    for ref in _refs(document):  # every reference still resolves
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


async def test_a_rejected_parameter_is_the_documented_400_problem(
        client: httpx.AsyncClient) -> None:
    leaves = (await _openapi(client))["paths"]["/audit/leaves"]["get"]["responses"]
    assert "422" not in leaves
    assert PROBLEM in leaves["400"]["content"]
    assert_problem(await client.get("/audit/leaves", params={"start": "first"}))
