"""Stored @contexts: Hosted, ImplicitlyCreated and Cached, and how they reach the loader."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cityhub.api.context_fetch import HttpxFetcher
from cityhub.ngsild.context_registry import (
    CORE_ID,
    ContextRecord,
    ContextRegistry,
    MemoryContextStorage,
)
from cityhub.ngsild.errors import (
    BadRequestData,
    LdContextNotAvailable,
    OperationNotSupported,
    ResourceNotFound,
)
from cityhub.ngsild.jsonld import ContextServices, build_context_services
from cityhub.ngsild.model import CORE_CONTEXT_URL, DEFAULT_VOCAB

BASE = "http://hub.example.org:1026"
REMOTE = "https://contexts.example.org/traffic.jsonld"
USER = {"@context": {"speed": "https://vocab.example.org/speed"}}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class Remote:
    """A MockTransport serving one context document whose content the test can change."""

    def __init__(self) -> None:
        self.document: object = {"@context": {"intensity": "https://sdm.example.org/intensity"}}
        self.status = 200
        self.requests = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return httpx.Response(self.status, content=json.dumps(self.document).encode())


@pytest.fixture
def remote() -> Remote:
    return Remote()


@pytest.fixture
def services(remote: Remote, tmp_path: Path) -> ContextServices:
    return build_context_services(
        base_url=BASE + "/",
        cache_dir=tmp_path / "cache",
        fetch=HttpxFetcher(transport=httpx.MockTransport(remote.handler)),
    )


def test_a_hosted_context_is_listed_served_and_resolvable(services: ContextServices) -> None:
    registry = services.registry
    record = registry.add(USER)
    assert record.kind == "Hosted"
    assert record.url == f"{BASE}/ngsi-ld/v1/jsonldContexts/{record.id}"
    assert registry.list() == [CORE_CONTEXT_URL, record.url]
    assert registry.list(kind="Hosted") == [record.url]
    assert registry.get(record.id) == USER
    terms = services.term_map(record.url)
    assert terms.expand_term("speed") == "https://vocab.example.org/speed"
    alias = record.url.replace("hub.example.org", "127.0.0.1")  # the same hub, another name
    assert services.loader.load(alias) == USER


def test_metadata_of_stored_contexts() -> None:
    clock = Clock()
    registry = ContextRegistry(MemoryContextStorage(), base_url=BASE, clock=clock)
    record = registry.add(USER)
    registry.stored_document(record.url)
    registry.stored_document(record.url)
    described = registry.get(record.id, details=True)
    assert described == {
        "URL": record.url,
        "localId": record.id,
        "kind": "Hosted",
        "createdAt": "2026-03-01T12:00:02.000000Z",
        "lastUsage": "2026-03-01T12:00:04.000000Z",
        "numberOfHits": 2,
    }
    core, hosted = registry.list(details=True)
    assert core["localId"] == CORE_ID
    assert core["kind"] == "Cached"
    assert hosted == described


@pytest.mark.parametrize(
    "body", [{"speed": "x"}, {"@context": 5}, {"@context": None}, [USER], "text"]
)
def test_adding_something_else_than_a_context_is_bad_request_data(
    services: ContextServices, body: object
) -> None:
    with pytest.raises(BadRequestData):
        services.registry.add(body)


def test_listing_with_an_unknown_kind_is_bad_request_data(services: ContextServices) -> None:
    with pytest.raises(BadRequestData, match="kind"):
        services.registry.list(kind="hosted")


def test_deleting_a_hosted_context_stops_resolving_it(services: ContextServices) -> None:
    registry = services.registry
    record = registry.add(USER)
    services.term_map(record.url)
    registry.delete(record.id)
    assert registry.list(kind="Hosted") == []
    with pytest.raises(ResourceNotFound):
        registry.get(record.id)
    with pytest.raises(LdContextNotAvailable, match=record.id):
        services.term_map(record.url)


def test_the_core_context_is_listed_but_neither_served_nor_deleted(
    services: ContextServices,
) -> None:
    registry = services.registry
    assert registry.get(CORE_ID, details=True)["URL"] == CORE_CONTEXT_URL
    assert registry.get(CORE_CONTEXT_URL, details=True)["localId"] == CORE_ID
    with pytest.raises(OperationNotSupported):
        registry.get(CORE_ID)
    for reload in (False, True):
        with pytest.raises(BadRequestData, match="core"):
            registry.delete(CORE_ID, reload=reload)


def test_unknown_ids_are_not_found(services: ContextServices) -> None:
    with pytest.raises(ResourceNotFound):
        services.registry.get("nope")
    with pytest.raises(ResourceNotFound):
        services.registry.delete("nope")


def test_remote_fetches_are_cached_and_counted(services: ContextServices, remote: Remote) -> None:
    registry = services.registry
    services.loader.load(REMOTE)
    services.loader.load(REMOTE)
    assert remote.requests == 1
    assert registry.list(kind="Cached") == [CORE_CONTEXT_URL, REMOTE]
    described = registry.get(REMOTE, details=True)
    assert described["kind"] == "Cached"
    assert described["numberOfHits"] == 1  # the second load was served from the cache
    with pytest.raises(OperationNotSupported):
        registry.get(described["localId"])


def test_reloading_a_cached_context_replaces_it_everywhere(
    services: ContextServices, remote: Remote, tmp_path: Path
) -> None:
    intensity = services.term_map(REMOTE).expand_term("intensity")
    assert intensity == "https://sdm.example.org/intensity"
    remote.document = {"@context": {"intensity": "https://sdm.example.org/v2/intensity"}}
    local_id = services.registry.get(REMOTE, details=True)["localId"]
    services.registry.delete(local_id, reload=True)
    assert remote.requests == 2
    assert services.term_map(REMOTE).expand_term("intensity") == (
        "https://sdm.example.org/v2/intensity"
    )
    assert services.registry.get(REMOTE, details=True)["numberOfHits"] == 1
    restarted = build_context_services(
        base_url=BASE, cache_dir=tmp_path / "cache"
    )
    assert restarted.loader.load(REMOTE) == remote.document


def test_reload_failures(services: ContextServices, remote: Remote) -> None:
    hosted = services.registry.add(USER)
    with pytest.raises(BadRequestData, match="Hosted"):
        services.registry.delete(hosted.id, reload=True)
    services.loader.load(REMOTE)
    remote.status = 500
    with pytest.raises(LdContextNotAvailable, match="HTTP 500"):
        services.registry.delete(REMOTE, reload=True)
    assert services.loader.load(REMOTE)["@context"] == {
        "intensity": "https://sdm.example.org/intensity"
    }


def test_deleting_a_cached_context_fetches_it_again_next_time(
    services: ContextServices, remote: Remote
) -> None:
    services.loader.load(REMOTE)
    services.registry.delete(REMOTE)
    assert services.registry.list(kind="Cached") == [CORE_CONTEXT_URL]
    services.loader.load(REMOTE)
    assert remote.requests == 2


def test_implicit_contexts_get_a_stable_url() -> None:
    inline = [REMOTE, {"speed": "https://vocab.example.org/speed"}]
    first = build_context_services(base_url=BASE).registry
    second = build_context_services(base_url=BASE).registry
    url = first.ensure_implicit(inline)
    assert url == second.ensure_implicit(json.loads(json.dumps(inline)))
    assert first.ensure_implicit(inline) == url
    assert first.list(kind="ImplicitlyCreated") == [url]
    assert first.get(url) == {"@context": inline}
    assert first.ensure_implicit(REMOTE) == REMOTE
    with pytest.raises(BadRequestData):
        first.ensure_implicit(7)


def test_an_implicit_context_resolves_through_the_loader() -> None:
    services = build_context_services(base_url=BASE)
    url = services.registry.ensure_implicit({"speed": "https://vocab.example.org/speed"})
    terms = services.term_map(url)
    assert terms.expand_term("speed") == "https://vocab.example.org/speed"
    assert terms.expand_term("other") == DEFAULT_VOCAB + "other"


def record(context_id: str, url: str, minute: int) -> ContextRecord:
    created = datetime(2026, 1, 1, 0, minute, tzinfo=UTC)
    return ContextRecord(context_id, url, "Hosted", USER, created)


@pytest.mark.parametrize("make", [MemoryContextStorage])
def test_storage_contract(make: Callable[[], MemoryContextStorage]) -> None:
    storage = make()
    storage.put(record("b", "https://h/b", 2))
    storage.put(record("a", "https://h/a", 1))
    assert [r.id for r in storage.list()] == ["a", "b"]
    assert storage.get("a") == record("a", "https://h/a", 1)
    assert storage.get_by_url("https://h/b") == record("b", "https://h/b", 2)
    storage.put(record("a", "https://h/a2", 1))
    assert storage.get_by_url("https://h/a") is None
    assert storage.delete("a") is True
    assert storage.delete("a") is False
    assert storage.get("a") is None
