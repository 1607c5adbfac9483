"""The offline-capable @context document loader: bundled, context_dir, caches, remote fetch."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from cityhub.api.context_fetch import HttpxFetcher
from cityhub.ngsild.context_loader import (
    DATA_INTEGRITY_V2_URL,
    DocumentLoader,
    is_core_context_url,
)
from cityhub.ngsild.errors import InvalidRequest, LdContextNotAvailable
from cityhub.ngsild.term_map import ContextResolver

FIXTURES = Path(__file__).parent / "fixtures" / "contexts"
CORE_URLS = [
    f"{scheme}://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context{version}.jsonld"
    for scheme in ("https", "http")
    for version in ["", *(f"-v1.{minor}" for minor in range(10))]
]
USER_CONTEXT = {"@context": {"speed": "https://vocab.example.org/speed"}}


class ContextServer:
    """A local HTTP server serving context documents; counts requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.hits: dict[str, int] = {}
        self.release = threading.Event()  # a "/slow" request waits for this
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path.startswith("/slow"):
                    server.release.wait(10)
                status, body = server.routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that timed out has gone: nothing to report

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def serve(self, path: str, document: object, status: int = 200) -> str:
        self.routes[path] = (status, json.dumps(document).encode())
        return self.base + path


@pytest.fixture
def server() -> Iterator[ContextServer]:
    served = ContextServer()
    served.thread.start()
    yield served
    served.release.set()
    served.httpd.shutdown()
    served.httpd.server_close()
    served.thread.join(5)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any httpx request fails the test: proves a resolution used no network."""

    def refuse(*args: object, **kwargs: object) -> httpx.Response:
        pytest.fail("the network was used")

    monkeypatch.setattr(httpx.Client, "send", refuse)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("url", CORE_URLS)
@pytest.mark.usefixtures("no_network")
def test_every_core_context_version_resolves_offline(url: str) -> None:
    loader = DocumentLoader(fetch=HttpxFetcher(timeout=0.5))
    remote = loader(url, {})
    assert remote["documentUrl"] == url
    assert remote["document"]["@context"]["location"] == "ngsi-ld:location"
    assert ContextResolver(loader).term_map([url]).expand_term("location") == (
        "https://uri.etsi.org/ngsi-ld/location"
    )


def test_core_url_recognition_is_exact() -> None:
    assert is_core_context_url("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld")
    assert not is_core_context_url(
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.10.jsonld"
    )
    assert not is_core_context_url("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld?x")
    assert not is_core_context_url("https://evil.example.org/ngsi-ld-core-context.jsonld")


@pytest.mark.usefixtures("no_network")
def test_data_integrity_context_referenced_by_the_core_is_bundled() -> None:
    document = DocumentLoader()(DATA_INTEGRITY_V2_URL, {})["document"]
    assert "DataIntegrityProof" in document["@context"]


def test_loader_hands_out_copies_pyld_may_mutate() -> None:
    loader = DocumentLoader()
    url = CORE_URLS[0]
    loader(url, {})["document"]["@context"]["location"] = "mutated"
    assert loader(url, {})["document"]["@context"]["location"] == "ngsi-ld:location"


@pytest.mark.usefixtures("no_network")
def test_context_dir_index_mirror_and_file_name() -> None:
    loader = DocumentLoader(context_dir=FIXTURES)
    by_index = loader.load("https://contexts.example.org/city/compound.jsonld")
    assert by_index["@context"][0] == "./other.jsonld"
    by_mirror = loader.load("http://contexts.example.org/mirrored/traffic.jsonld")
    assert "TrafficFlowObserved" in by_mirror["@context"]
    by_name = loader.load("https://elsewhere.example.net/any/path/other.jsonld")
    assert "Vehicle" in by_name["@context"]


def test_context_dir_never_reads_outside_the_folder() -> None:
    loader = DocumentLoader(context_dir=FIXTURES)
    with pytest.raises(LdContextNotAvailable, match=r"https://contexts\.example\.org/escape"):
        loader.load("https://contexts.example.org/escape.jsonld")
    with pytest.raises(LdContextNotAvailable):
        loader.load("https://contexts.example.org/../../outside.jsonld")


@pytest.mark.usefixtures("no_network")
def test_compound_context_resolves_relative_references_against_its_url() -> None:
    resolver = ContextResolver(DocumentLoader(context_dir=FIXTURES))
    terms = resolver.term_map("https://contexts.example.org/city/compound.jsonld")
    assert terms.expand_term("speed") == "https://vocab.example.org/speed"
    # "./other.jsonld" became https://contexts.example.org/city/other.jsonld, found by file name
    assert terms.expand_term("Vehicle") == "https://vocab.example.org/Vehicle"
    assert terms.expand_term("vx:colour") == "https://vocab.example.org/colour"
    # other.jsonld redefines "location": the protected core term still wins
    assert terms.expand_term("location") == "https://uri.etsi.org/ngsi-ld/location"


def test_context_dir_picks_up_files_added_and_changed_later(tmp_path: Path) -> None:
    loader = DocumentLoader(context_dir=tmp_path)
    url = "https://contexts.example.org/late.jsonld"
    with pytest.raises(LdContextNotAvailable):
        loader.load(url)
    (tmp_path / "mine.jsonld").write_text(json.dumps(USER_CONTEXT))
    (tmp_path / "index.json").write_text(json.dumps({url: "mine.jsonld"}))
    assert loader.load(url) == USER_CONTEXT
    changed = {"@context": {"speed": "https://vocab.example.org/velocity"}}
    (tmp_path / "mine.jsonld").write_text(json.dumps(changed, indent=2))
    assert loader.load(url) == changed


def test_an_invalid_index_is_ignored_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("[not an object")
    (tmp_path / "ctx.jsonld").write_text(json.dumps(USER_CONTEXT))
    assert DocumentLoader(context_dir=tmp_path).load("https://a.example.org/ctx.jsonld") == (
        USER_CONTEXT
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://contexts.example.org/broken.jsonld",
        "https://contexts.example.org/no-context.jsonld",
    ],
)
def test_files_that_are_not_context_documents_are_invalid(url: str) -> None:
    with pytest.raises(InvalidRequest, match=url.replace(".", r"\.")):
        DocumentLoader(context_dir=FIXTURES).load(url)


def test_unreachable_remote_context_is_not_available() -> None:
    url = f"http://127.0.0.1:{unused_port()}/ctx.jsonld"
    loader = DocumentLoader(fetch=HttpxFetcher(timeout=1.0))
    with pytest.raises(LdContextNotAvailable, match=url.replace(".", r"\.")):
        loader.load(url)


def test_a_slow_server_times_out(server: ContextServer) -> None:
    url = server.serve("/slow.jsonld", USER_CONTEXT)
    loader = DocumentLoader(fetch=HttpxFetcher(timeout=0.2))
    with pytest.raises(LdContextNotAvailable, match="ReadTimeout"):
        loader.load(url)


def test_remote_errors_and_non_context_replies(server: ContextServer) -> None:
    loader = DocumentLoader(fetch=HttpxFetcher(timeout=2.0))
    with pytest.raises(LdContextNotAvailable, match="HTTP 404"):
        loader.load(server.base + "/missing.jsonld")
    server.routes["/html"] = (200, b"<html>not json</html>")
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        loader.load(server.base + "/html")
    with pytest.raises(InvalidRequest, match="not a JSON-LD @context document"):
        loader.load(server.serve("/list.jsonld", [1, 2]))


def test_remote_fetch_is_cached_in_memory_and_on_disk(
    server: ContextServer, tmp_path: Path
) -> None:
    url = server.serve("/ctx.jsonld", USER_CONTEXT)
    loader = DocumentLoader(fetch=HttpxFetcher(timeout=2.0), cache_dir=tmp_path)
    assert loader.load(url) == USER_CONTEXT
    assert loader.load(url) == USER_CONTEXT
    assert server.hits["/ctx.jsonld"] == 1
    restarted = DocumentLoader(fetch=HttpxFetcher(timeout=2.0), cache_dir=tmp_path)
    assert restarted.load(url) == USER_CONTEXT
    assert server.hits["/ctx.jsonld"] == 1


def test_a_corrupt_disk_cache_file_is_dropped_and_refetched(
    server: ContextServer, tmp_path: Path
) -> None:
    url = server.serve("/ctx.jsonld", USER_CONTEXT)
    DocumentLoader(fetch=HttpxFetcher(timeout=2.0), cache_dir=tmp_path).load(url)
    (cached,) = tmp_path.glob("*.json")
    cached.write_text("{broken")
    assert DocumentLoader(fetch=HttpxFetcher(timeout=2.0), cache_dir=tmp_path).load(url) == (
        USER_CONTEXT
    )
    assert server.hits["/ctx.jsonld"] == 2


def test_term_maps_do_not_refetch(server: ContextServer) -> None:
    url = server.serve("/ctx.jsonld", USER_CONTEXT)
    resolver = ContextResolver(DocumentLoader(fetch=HttpxFetcher(timeout=2.0)))
    first = resolver.term_map(url)
    resolver.clear()
    second = resolver.term_map(url)
    assert first.expand_term("speed") == second.expand_term("speed")
    assert first is not second
    assert server.hits["/ctx.jsonld"] == 1


def test_remote_fetching_can_be_disabled() -> None:
    with pytest.raises(LdContextNotAvailable, match="remote fetching is disabled"):
        DocumentLoader().load("https://contexts.example.org/anything.jsonld")


def test_only_http_urls_are_fetched() -> None:
    with pytest.raises(LdContextNotAvailable, match="not an http"):
        HttpxFetcher()("file:///etc/passwd")


def test_oversized_documents_are_refused() -> None:
    big = json.dumps({"@context": {"x": "y" * 5000}}).encode()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=big))
    with pytest.raises(LdContextNotAvailable, match="larger than"):
        HttpxFetcher(transport=transport, max_bytes=1000)("https://a.example.org/big.jsonld")
