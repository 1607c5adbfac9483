"""JSON-LD @context at the HTTP edge: which @context a request uses (ETSI GS CIM 009 6.3.5).

Pure functions for the routers:

- `parse_link_header(header)` -> the URL of the one JSON-LD context link, or None;
- `request_context(content_type, link_header, body)` -> the request's @context value:
  `application/json` and `application/merge-patch+json` take it from the Link header (an
  `@context` member in the payload is an error); `application/ld+json` takes it from the
  payload's `@context` member, which is then required (a Link header is an error); requests
  without a payload (GET, DELETE: pass `content_type=None`) use the Link header alone; other
  media types are refused with UnsupportedMediaType. For batch payloads (lists of entities)
  call it once per entity. None means "the core context alone".
- `link_header(url)` -> the Link header value a response carries for its @context.

`build_context_services` wires the loader, the registry and the term-map resolver together
(the modules `context_loader`, `context_registry` and `term_map` hold them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from cityhub.ngsild.context_loader import DocumentLoader, Fetch, is_context_value
from cityhub.ngsild.context_registry import ContextRegistry, ContextStorage, MemoryContextStorage
from cityhub.ngsild.errors import BadRequestData, InvalidRequest, UnsupportedMediaType
from cityhub.ngsild.term_map import ContextResolver, ContextValue, TermMap

__all__ = [
    "JSON",
    "JSONLD",
    "JSONLD_CONTEXT_REL",
    "MERGE_PATCH",
    "ContextResolver",
    "ContextServices",
    "ContextValue",
    "TermMap",
    "build_context_services",
    "link_header",
    "media_type",
    "parse_json_body",
    "parse_link_header",
    "request_context",
]

JSON = "application/json"
JSONLD = "application/ld+json"
MERGE_PATCH = "application/merge-patch+json"
JSONLD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"

# One link-value: <target> then ;-separated parameters whose values may be quoted strings.
_TOKEN = r"[^\s;,=\"<>]+"  # noqa: S105 (a regex, not a password)
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM = rf"\s*;\s*({_TOKEN})\s*(?:=\s*({_QUOTED}|{_TOKEN}))?"
_LINK = re.compile(rf"\s*<([^<>]*)>((?:{_PARAM})*)\s*")
_PARAMS = re.compile(_PARAM)


def _split_links(text: str) -> list[str]:
    """Split a Link header at the commas outside <targets> and "quoted strings"."""
    elements: list[str] = []
    current: list[str] = []
    closing: str | None = None  # the character that ends the bracket or quote we are in
    escaped = False
    for char in text:
        if closing is None and char == ",":
            elements.append("".join(current))
            current = []
            continue
        current.append(char)
        if escaped:
            escaped = False
        elif closing == '"' and char == "\\":
            escaped = True
        elif closing is not None and char == closing:
            closing = None
        elif closing is None and char in '<"':
            closing = ">" if char == "<" else '"'
    if closing is not None:
        raise BadRequestData(f"malformed Link header (unclosed {closing!r}): {text!r}")
    elements.append("".join(current))
    return [element for element in elements if element.strip()]  # empty list elements are legal


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_link_header(header: str | Iterable[str] | None) -> str | None:
    """The @context URL of a Link header (several header lines may be given as a list)."""
    if header is None:
        return None
    text = header if isinstance(header, str) else ", ".join(header)
    found: list[str] = []
    for element in _split_links(text):
        match = _LINK.fullmatch(element)
        if match is None:
            raise BadRequestData(f"malformed Link header element: {element.strip()!r}")
        for name, value in _PARAMS.findall(match.group(2)):
            if name.lower() == "rel" and JSONLD_CONTEXT_REL in _unquote(value).lower().split():
                found.append(match.group(1).strip())
                break
    if len(found) > 1:
        raise BadRequestData("a request may carry only one JSON-LD @context Link header")
    if not found:
        return None
    parts = urlsplit(found[0])
    if not (parts.scheme and parts.netloc):
        raise BadRequestData(
            f"the @context Link header must hold an absolute URL, not {found[0]!r}"
        )
    return found[0]


def link_header(url: str) -> str:
    """The Link header value announcing `url` as the @context of a response body."""
    return f'<{url}>; rel="{JSONLD_CONTEXT_REL}"; type="{JSONLD}"'


def media_type(content_type: str | None) -> str | None:
    """`application/ld+json; charset=utf-8` -> `application/ld+json` (lower case)."""
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def request_context(
    content_type: str | None, link_header: str | Iterable[str] | None, body: object = None
) -> ContextValue:
    """The @context a request uses, by its media type (see the module docstring)."""
    link = parse_link_header(link_header)
    media = media_type(content_type)
    if media is None:
        return link
    if media in (JSON, MERGE_PATCH):
        if isinstance(body, dict) and "@context" in body:
            raise BadRequestData(
                f"with Content-Type {media} the @context goes in the Link header, "
                "not in the payload (or send application/ld+json)"
            )
        return link
    if media == JSONLD:
        if link is not None:
            raise BadRequestData(
                "with Content-Type application/ld+json the @context goes in the payload, "
                "not in a Link header"
            )
        if not isinstance(body, dict):
            raise BadRequestData("an application/ld+json payload must be a JSON object")
        if "@context" not in body:
            raise BadRequestData("an application/ld+json payload must carry an @context member")
        context = body["@context"]
        if not is_context_value(context):
            raise BadRequestData("@context must be a URL, a JSON object or a list of those")
        return context  # type: ignore[no-any-return]
    raise UnsupportedMediaType(
        f"Content-Type {media} is not supported here: use {JSON} or {JSONLD}"
    )


def parse_json_body(raw: bytes) -> Any:
    """The JSON payload of a request (InvalidRequest when it is not JSON).

    Strict RFC 8259, as the entity API reads it: NaN, Infinity and lone surrogates are refused
    (they could be stored but never written out again).
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the payload is not valid JSON: {exc}") from None


@dataclass(frozen=True, slots=True)
class ContextServices:
    """The wired @context machinery of one hub process."""

    registry: ContextRegistry
    loader: DocumentLoader
    resolver: ContextResolver

    def term_map(self, context: ContextValue = None) -> TermMap:
        return self.resolver.term_map(context)


def build_context_services(
    *,
    base_url: str,
    storage: ContextStorage | None = None,
    context_dir: Path | None = None,
    cache_dir: Path | None = None,
    fetch: Fetch | None = None,
    max_term_maps: int = 256,
) -> ContextServices:
    """Wire registry, loader and resolver; put `.registry` in `app.state.contexts`.

    `base_url` is where clients reach the hub (hosted contexts are served under
    `{base_url}/ngsi-ld/v1/jsonldContexts/{id}`); `fetch` gets remote contexts (the hub passes
    `cityhub.api.context_fetch.HttpxFetcher`); without it the network is never used (only
    bundled, stored, `context_dir` and cached contexts resolve).
    """
    registry = ContextRegistry(storage or MemoryContextStorage(), base_url=base_url, fetch=fetch)
    loader = DocumentLoader(
        store=registry, context_dir=context_dir, cache_dir=cache_dir, fetch=fetch
    )
    resolver = ContextResolver(loader, max_entries=max_term_maps)
    registry.add_listener(loader.context_changed)
    registry.add_listener(lambda _url, _document: resolver.clear())
    return ContextServices(registry=registry, loader=loader, resolver=resolver)
