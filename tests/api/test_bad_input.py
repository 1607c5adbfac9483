"""Inputs that once made the hub answer 500 (found by fuzzing the OpenAPI) now get a 400 problem.

Each case is the smallest request that reproduced one bug, so it stays fixed even when the
fuzzer (tests/api/test_openapi_fuzz.py) would not happen to generate it again.
"""

from __future__ import annotations

import httpx
import pytest

ENTITIES = "/ngsi-ld/v1/entities"
QUERY = "/ngsi-ld/v1/entityOperations/query"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CAR = {"id": "urn:ngsi-ld:Car:1", "type": "Car", "speed": {"type": "Property", "value": 1}}


def assert_problem(
    response: httpx.Response, status: int = 400, kind: str = "BadRequestData"
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == ERRORS + kind
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]


@pytest.fixture
async def car(client: httpx.AsyncClient) -> str:
    response = await client.post(ENTITIES, json=CAR)
    assert response.status_code == 201, response.text
    return f"{ENTITIES}/{CAR['id']}"


@pytest.mark.parametrize("kind", [[], {}, ["Property"], 1])
async def test_attribute_whose_type_is_not_a_string(
    client: httpx.AsyncClient, car: str, kind: object
) -> None:
    """A list as `type` was looked up in a frozenset: TypeError (unhashable), 500."""
    response = await client.post(car + "/attrs", json={"speed": {"type": kind, "value": 2}})
    assert_problem(response)


async def test_attribute_list_whose_items_have_unhashable_types(
    client: httpx.AsyncClient, car: str
) -> None:
    body = {"speed": [{"type": ["Property"], "value": 1}, {"type": "Property", "value": 2}]}
    assert_problem(await client.post(car + "/attrs", json=body))


async def test_geometry_like_value_with_a_list_as_type_is_not_a_geometry(
    client: httpx.AsyncClient, car: str
) -> None:
    """The concise form tested `type` against the geometry types: the same TypeError."""
    body = {"shape": {"type": ["Point"], "coordinates": [1, 2]}}
    response = await client.post(car + "/attrs", json=body)
    assert response.status_code == 204, response.text
    stored = (await client.get(car)).json()["shape"]
    assert stored == {"type": "Property", "value": {"type": ["Point"], "coordinates": [1, 2]}}


@pytest.mark.parametrize(
    "selector",
    [
        {"type": ["Car"]},  # ",".join over a list of lists: TypeError
        {"type": [1]},
        {"id": ["urn:ngsi-ld:Car:1"]},  # a list bound as an SQL parameter: ProgrammingError
        {"id": 1},
        {"idPattern": {"regex": "x"}},
        {"type": ""},
    ],
)
async def test_query_entity_selector_members_must_be_strings(
    client: httpx.AsyncClient, car: str, selector: dict[str, object]
) -> None:
    response = await client.post(QUERY, json={"type": "Query", "entities": [selector]})
    assert_problem(response)


@pytest.mark.parametrize("entities", [{}, "Car", [1], [["Car"]]])
async def test_query_entities_must_be_an_array_of_selectors(
    client: httpx.AsyncClient, car: str, entities: object
) -> None:
    response = await client.post(QUERY, json={"type": "Query", "entities": entities})
    assert_problem(response)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("attrs", 1),  # iterated: TypeError
        ("attrs", -0.0),
        ("attrs", [1]),  # term expansion of an int: AttributeError
        ("attrs", [{}]),  # a dict as a memo key: TypeError
        ("pick", 1),
        ("omit", 1),
        ("q", 1),  # the q parser called .strip() on it: AttributeError
        ("q", [None]),
        ("scopeQ", [None]),
        ("lang", ["en"]),  # a list looked up in a languageMap
    ],
)
async def test_query_object_members_of_the_wrong_json_type(
    client: httpx.AsyncClient, car: str, member: str, value: object
) -> None:
    response = await client.post(QUERY, json={"type": "Query", member: value})
    assert_problem(response)


async def test_query_object_lists_of_names_still_work(client: httpx.AsyncClient, car: str) -> None:
    body = {"type": "Query", "entities": [{"type": "Car"}], "attrs": ["speed"], "pick": ["id"]}
    response = await client.post(QUERY, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == [{"id": CAR["id"]}]


@pytest.mark.parametrize("path", [ENTITIES + "?type=Car", QUERY])
async def test_offset_beyond_64_bits(client: httpx.AsyncClient, car: str, path: str) -> None:
    """SQLite cannot bind it: OverflowError, 500."""
    separator = "&" if "?" in path else "?"
    url = f"{path}{separator}offset={10**23}"
    if path == QUERY:
        response = await client.post(url, json={"type": "Query", "entities": [{"type": "Car"}]})
    else:
        response = await client.get(url)
    assert_problem(response)


async def test_largest_offset_is_accepted(client: httpx.AsyncClient, car: str) -> None:
    response = await client.get(f"{ENTITIES}?type=Car&offset={2**63 - 1}")
    assert response.status_code == 200, response.text
    assert response.json() == []


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_observed_at_outside_the_range_of_utc(
    client: httpx.AsyncClient, car: str, moment: str
) -> None:
    """Valid ISO 8601 whose UTC form falls outside years 1-9999: OverflowError, 500."""
    body = {"speed": {"type": "Property", "value": 2, "observedAt": moment}}
    assert_problem(await client.post(car + "/attrs", json=body))


async def test_observed_at_before_year_1000_keeps_four_digits(
    client: httpx.AsyncClient, car: str
) -> None:
    """strftime('%Y') wrote year 5 as '5', not the ISO 8601 '0005'."""
    body = {"speed": {"type": "Property", "value": 2, "observedAt": "0005-01-01T00:00:00Z"}}
    assert (await client.post(car + "/attrs", json=body)).status_code == 204
    speed = (await client.get(car)).json()["speed"]
    assert speed["observedAt"] == "0005-01-01T00:00:00.000000Z"


async def test_context_with_an_integer_beyond_64_bits_is_stored(
    client: httpx.AsyncClient,
) -> None:
    """Read with the stdlib json, it could not be written to the store by orjson: 500."""
    body = b'{"@context": {"n": {"@id": "https://example.org/n", "x": 1' + b"0" * 30 + b"}}}"
    response = await client.post("/ngsi-ld/v1/jsonldContexts", content=body,
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "body",
    [b'{"@context": {"n": NaN}}', b'{"@context": {"n": "\\ud800"}}', b'{"@context": Infinity}'],
)
async def test_context_that_is_not_strict_json(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/ngsi-ld/v1/jsonldContexts", content=body,
                                 headers={"Content-Type": "application/json"})
    assert_problem(response, kind="InvalidRequest")


async def test_batch_in_json_ld_reads_the_context_of_its_entities(
    client: httpx.AsyncClient,
) -> None:
    """The whole array was taken for the payload and refused as not an object."""
    context = {"Car": "https://example.org/Car", "speed": "https://example.org/speed"}
    batch = [{"id": f"urn:ngsi-ld:Car:{n}", "type": "Car", "speed": n, "@context": context}
             for n in (7, 8)]
    response = await client.post("/ngsi-ld/v1/entityOperations/create", json=batch,
                                 headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 201, response.text
    stored = (await client.get(f"{ENTITIES}/urn:ngsi-ld:Car:7")).json()
    assert stored["type"] == "https://example.org/Car"
    assert stored["https://example.org/speed"] == {"type": "Property", "value": 7}


async def test_batch_in_json_ld_without_a_context_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/ngsi-ld/v1/entityOperations/create", json=[CAR],
                                 headers={"Content-Type": "application/ld+json"})
    assert_problem(response)


async def test_huge_subscription_offset_is_bad_request(client: httpx.AsyncClient) -> None:
    response = await client.get("/ngsi-ld/v1/subscriptions",
                                params={"offset": "46487591585050542080"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_batch_of_many_duplicates_reports_each_once(client: httpx.AsyncClient) -> None:
    body = [{"id": "urn:ngsi-ld:T:0", "type": "T"}] * 2000
    response = await client.post("/ngsi-ld/v1/entityOperations/create", json=body)
    assert response.status_code == 207
    result = response.json()
    assert result["success"] == []  # an id given twice is refused, each repeat reported
    assert len(result["errors"]) == 1999
