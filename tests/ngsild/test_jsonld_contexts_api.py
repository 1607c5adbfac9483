"""The /jsonldContexts router, through a minimal app that maps domain errors to problems."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cityhub.api.context_fetch import HttpxFetcher
from cityhub.api.routers.jsonld_contexts import router
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.jsonld import ContextServices, build_context_services
from cityhub.ngsild.model import CORE_CONTEXT_URL

BASE = "http://hub.test"
API = "/ngsi-ld/v1/jsonldContexts"
USER = {"@context": {"speed": "https://vocab.example.org/speed"}}
REMOTE = "https://contexts.example.org/traffic.jsonld"
REMOTE_DOC = {"@context": {"intensity": "https://sdm.example.org/intensity"}}


def make_app(services: ContextServices) -> FastAPI:
    app = FastAPI()
    app.include_router(router, prefix="/ngsi-ld/v1")
    app.state.contexts = services.registry

    @app.exception_handler(NgsiLdError)
    async def problem(_request: Request, exc: NgsiLdError) -> JSONResponse:
        body = {
            "type": exc.type_uri,
            "title": exc.title,
            "status": exc.status,
            "detail": exc.detail,
        }
        return JSONResponse(body, status_code=exc.status)

    return app


@pytest.fixture
def services() -> ContextServices:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=REMOTE_DOC))
    return build_context_services(base_url=BASE, fetch=HttpxFetcher(transport=transport))


@pytest.fixture
async def client(services: ContextServices) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(make_app(services))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


async def test_add_then_serve_then_delete(client: httpx.AsyncClient) -> None:
    added = await client.post(API, json=USER)
    assert added.status_code == 201
    location = added.headers["location"]
    assert location.startswith(f"{BASE}{API}/")
    served = await client.get(location)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/ld+json")
    assert served.json() == USER
    assert (await client.get(API)).json() == [CORE_CONTEXT_URL, location]
    deleted = await client.delete(location)
    assert deleted.status_code == 204
    gone = await client.get(location)
    assert gone.status_code == 404
    assert gone.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"


async def test_add_accepts_json_ld_and_refuses_other_payloads(client: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/ld+json"}
    ok = await client.post(API, content=json.dumps(USER), headers=headers)
    assert ok.status_code == 201
    text = await client.post(API, content=json.dumps(USER), headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    broken = await client.post(API, content=b"{nope", headers=headers)
    assert broken.status_code == 400
    assert broken.json()["type"].endswith("/InvalidRequest")
    no_context = await client.post(API, json={"speed": "x"})
    assert no_context.status_code == 400
    assert no_context.json()["type"].endswith("/BadRequestData")


async def test_list_details_and_kind(client: httpx.AsyncClient, services: ContextServices) -> None:
    hosted = (await client.post(API, json=USER)).headers["location"]
    services.loader.load(REMOTE)
    listed = (await client.get(API, params={"details": "true"})).json()
    assert [(item["URL"], item["kind"]) for item in listed] == [
        (CORE_CONTEXT_URL, "Cached"),
        (hosted, "Hosted"),
        (REMOTE, "Cached"),
    ]
    cached = (await client.get(API, params={"kind": "Cached"})).json()
    assert cached == [CORE_CONTEXT_URL, REMOTE]
    for bad in ({"kind": "Nope"}, {"details": "yes"}):
        response = await client.get(API, params=bad)
        assert response.status_code == 400


async def test_cached_contexts_give_metadata_not_content(
    client: httpx.AsyncClient, services: ContextServices
) -> None:
    services.loader.load(REMOTE)
    by_url = f"{API}/{REMOTE}"
    refused = await client.get(by_url)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/OperationNotSupported")
    described = await client.get(by_url, params={"details": "true"})
    assert described.json()["URL"] == REMOTE
    reloaded = await client.delete(by_url, params={"reload": "true"})
    assert reloaded.status_code == 204
    assert (await client.get(API, params={"kind": "Cached"})).json() == [CORE_CONTEXT_URL, REMOTE]


async def test_the_core_context_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    response = await client.delete(f"{API}/ngsi-ld-core-context")
    assert response.status_code == 400
    assert "core" in response.json()["detail"]


async def test_a_hosted_context_works_as_a_link_target(
    client: httpx.AsyncClient, services: ContextServices
) -> None:
    location = (await client.post(API, json=USER)).headers["location"]
    terms = services.term_map(location)
    assert terms.expand_term("speed") == "https://vocab.example.org/speed"
