"""Where JSON-LD @context documents come from: a pyld document loader that works offline.

`DocumentLoader` resolves a context URL in this order; the first source holding it wins:

1. **Bundled files** (`cityhub/ngsild/contexts/`): every versioned NGSI-LD core context URL
   (`https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld` and `...-v1.0.jsonld` to
   `...-v1.9.jsonld`, http or https) is served from the one bundled v1.9 core context, and
   `https://w3id.org/security/data-integrity/v2`, which that core context references, from its
   bundled copy. The network is never used for these.
2. **Contexts stored in the hub** through the /jsonldContexts API (kinds Hosted and
   ImplicitlyCreated), asked of the `ContextStore` by the URL under which the hub serves them.
3. **The operator folder** `context_dir` (setting CITYHUB_CONTEXT_DIR), filled by hand. For a
   URL it reads the first of these files that exists:
   - the file that `<context_dir>/index.json` names for the URL; `index.json` is a JSON object
     `{"https://example.org/ctx/city.jsonld": "city.jsonld", ...}` with paths relative to the
     folder (it is re-read when it changes);
   - the mirror path `<context_dir>/<host>/<path>`: `https://example.org/ctx/city.jsonld` ->
     `example.org/ctx/city.jsonld` (the layout `wget --mirror` produces);
   - the URL's last path segment at the top of the folder: `city.jsonld`.
   Paths leading outside the folder are ignored. Files are re-read when they change.
4. **Earlier remote fetches** (kind Cached), asked of the `ContextStore`, then, when `cache_dir`
   is set, the files `<cache_dir>/<sha256 of the URL>.json` (`{"url": ..., "document": ...}`),
   which survive restarts of the embedded default.
5. **A remote fetch** through the `fetch` callable given (the hub passes
   `cityhub.api.context_fetch.HttpxFetcher`, HTTP(S) with a short timeout); the result is kept as
   in 4. Without a fetcher (remote fetching disabled) the URL is not available.

A URL no source holds raises `LdContextNotAvailable` naming it; a document that is not JSON or
not a JSON object with an `@context` member raises `InvalidRequest`.

Relative context references inside a document (`"@context": ["./other.jsonld", ...]`) are
resolved by pyld against the URL of the document that contains them, because the loader
reports that URL as the `documentUrl`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cityhub.ngsild.errors import InvalidRequest, LdContextNotAvailable

log = logging.getLogger(__name__)

JsonDocument = dict[str, Any]
Fetch = Callable[[str], JsonDocument]
"""Fetches a context URL over the network and returns the validated document."""

CORE_CONTEXT_FILE = "ngsi-ld-core-context-v1.9.jsonld"
DATA_INTEGRITY_V2_URL = "https://w3id.org/security/data-integrity/v2"
_CORE_URL = re.compile(
    r"https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(?:-v1\.[0-9])?\.jsonld"
)
_BUNDLED_BY_URL = {DATA_INTEGRITY_V2_URL: "data-integrity-v2.jsonld"}


def is_core_context_url(url: str) -> bool:
    """True for every URL of an NGSI-LD core context version this broker serves from its bundle."""
    return _CORE_URL.fullmatch(url) is not None


@functools.cache
def _bundled_file(name: str) -> JsonDocument:
    text = (resources.files("cityhub.ngsild") / "contexts" / name).read_text(encoding="utf-8")
    document: JsonDocument = json.loads(text)
    return document


def bundled_document(url: str) -> JsonDocument | None:
    """The bundled document for `url`, shared: never mutate it (the loader hands out copies)."""
    if is_core_context_url(url):
        return _bundled_file(CORE_CONTEXT_FILE)
    name = _BUNDLED_BY_URL.get(url)
    return _bundled_file(name) if name else None


def core_context() -> JsonDocument:
    """A private copy of the bundled NGSI-LD core context document (`{"@context": {...}}`)."""
    return copy.deepcopy(_bundled_file(CORE_CONTEXT_FILE))


def is_context_value(value: object) -> bool:
    """True for what JSON-LD allows as an `@context` value: a URL, an object, null, or a list."""
    if value is None or isinstance(value, str | dict):
        return True
    return isinstance(value, list) and all(
        item is None or isinstance(item, str | dict) for item in value
    )


def validate_context_document(url: str, document: object) -> JsonDocument:
    """Check that `document` (fetched from `url`) is a JSON-LD context document."""
    if not isinstance(document, dict) or "@context" not in document:
        raise InvalidRequest(
            f"the document at {url} is not a JSON-LD @context document "
            "(a JSON object with an @context member)"
        )
    if not is_context_value(document["@context"]):
        raise InvalidRequest(
            f"the @context member of {url} must be a URL, an object or a list of those"
        )
    return document


def parse_context_json(url: str, raw: bytes | str) -> JsonDocument:
    """Parse and validate the bytes of a context document read from `url`."""
    try:
        document = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidRequest(f"the @context document at {url} is not valid JSON") from exc
    return validate_context_document(url, document)


class ContextStore(Protocol):
    """Contexts the hub itself holds: implemented by `ContextRegistry` (and `LocalContextCache`)."""

    def stored_document(self, url: str) -> JsonDocument | None:
        """A Hosted or ImplicitlyCreated context served by the hub under `url`.

        May raise LdContextNotAvailable for a URL of the hub's own that it does not hold, so
        that the loader does not fetch it over the network.
        """
        ...

    def cached_document(self, url: str) -> JsonDocument | None:
        """A copy of the remote context at `url` fetched earlier (kind Cached)."""
        ...

    def remember(self, url: str, document: JsonDocument) -> None:
        """Keep a freshly fetched remote context as kind Cached."""
        ...


class LocalContextCache:
    """The in-memory `ContextStore` a loader uses when no registry is attached."""

    def __init__(self) -> None:
        self._documents: dict[str, JsonDocument] = {}

    def stored_document(self, url: str) -> JsonDocument | None:
        return None

    def cached_document(self, url: str) -> JsonDocument | None:
        return self._documents.get(url)

    def remember(self, url: str, document: JsonDocument) -> None:
        self._documents[url] = document


class ContextDir:
    """An operator-filled folder of context files; see the module docstring for the mapping."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._index: tuple[int, dict[str, str]] = (-1, {})
        self._files: dict[Path, tuple[int, JsonDocument]] = {}

    def _read_index(self) -> dict[str, str]:
        path = self.root / "index.json"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return {}
        if mtime != self._index[0]:
            index: dict[str, str] = {}
            try:
                raw = json.loads(path.read_bytes())
                if not isinstance(raw, dict):
                    raise ValueError("index.json must be a JSON object")
                index = {str(k): str(v) for k, v in raw.items() if isinstance(v, str)}
            except (OSError, ValueError) as exc:
                log.warning("event=context_dir_index_invalid path=%s error=%s", path, exc)
            self._index = (mtime, index)
        return self._index[1]

    def path_for(self, url: str) -> Path | None:
        """The file in the folder that holds the context of `url`, if any."""
        candidates: list[str] = []
        named = self._read_index().get(url)
        if named is not None:
            candidates.append(named)
        parts = urlsplit(url)
        if parts.netloc and parts.path not in ("", "/"):
            candidates.append(parts.netloc + parts.path)
        basename = parts.path.rsplit("/", 1)[-1]
        if basename:
            candidates.append(basename)
        for relative in candidates:
            path = (self.root / relative).resolve()
            if path.is_relative_to(self.root) and path.is_file():
                return path
        return None

    def load(self, url: str) -> JsonDocument | None:
        path = self.path_for(url)
        if path is None:
            return None
        try:
            mtime = path.stat().st_mtime_ns
            held = self._files.get(path)
            if held is not None and held[0] == mtime:
                return held[1]
            raw = path.read_bytes()
        except OSError as exc:  # removed or unreadable since path_for looked
            log.warning("event=context_dir_file_unreadable path=%s error=%s", path, exc)
            return None
        document = parse_context_json(url, raw)
        self._files[path] = (mtime, document)
        return document


class DiskCache:
    """Remote contexts kept as files `<sha256(url)>.json`, so a restart does not refetch them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, url: str) -> Path:
        return self.root / (hashlib.sha256(url.encode()).hexdigest() + ".json")

    def load(self, url: str) -> JsonDocument | None:
        path = self._path(url)
        try:
            held = json.loads(path.read_bytes())
            if held.get("url") != url:
                return None
            return validate_context_document(url, held.get("document"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, AttributeError, InvalidRequest) as exc:
            log.warning("event=context_cache_file_invalid path=%s error=%s", path, exc)
            path.unlink(missing_ok=True)
            return None

    def save(self, url: str, document: JsonDocument) -> None:
        """Write atomically; a failure only costs a refetch later, so it is logged, not raised."""
        payload = json.dumps({"url": url, "document": document}, ensure_ascii=False)
        temporary: str | None = None
        try:
            handle, temporary = tempfile.mkstemp(dir=self.root, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(payload)
            os.replace(temporary, self._path(url))
        except OSError as exc:
            log.warning("event=context_cache_write_failed url=%s error=%s", url, exc)
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)

    def forget(self, url: str) -> None:
        self._path(url).unlink(missing_ok=True)


class DocumentLoader:
    """A pyld document loader: `loader(url, options)` returns a pyld RemoteDocument dict."""

    def __init__(
        self,
        *,
        store: ContextStore | None = None,
        context_dir: Path | None = None,
        cache_dir: Path | None = None,
        fetch: Fetch | None = None,
    ) -> None:
        self.store: ContextStore = store if store is not None else LocalContextCache()
        self._dir = ContextDir(context_dir) if context_dir is not None else None
        self._disk = DiskCache(cache_dir) if cache_dir is not None else None
        self._fetch = fetch

    def __call__(self, url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        # pyld rewrites relative @context references in place: hand it a copy.
        document = copy.deepcopy(self.load(url))
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": document,
        }

    def load(self, url: str) -> JsonDocument:
        """The context document for `url` (shared with the caches: do not mutate it)."""
        document = bundled_document(url)
        if document is None:
            document = self.store.stored_document(url)
        if document is None and self._dir is not None:
            document = self._dir.load(url)
        if document is None:
            document = self.store.cached_document(url)
        if document is None and self._disk is not None:
            document = self._disk.load(url)
            if document is not None:
                self.store.remember(url, document)
        if document is None:
            document = self.fetch_remote(url)
        return document

    def fetch_remote(self, url: str) -> JsonDocument:
        """Fetch `url` over the network (skipping every local source) and keep the result."""
        if self._fetch is None:
            raise LdContextNotAvailable(
                f"@context {url} is not held locally and remote fetching is disabled"
            )
        document = self._fetch(url)
        if self._disk is not None:
            self._disk.save(url, document)
        self.store.remember(url, document)
        log.info("event=context_fetched url=%s", url)
        return document

    def context_changed(self, url: str, document: JsonDocument | None) -> None:
        """Registry listener: keep the disk copy of a reloaded (or deleted) context in step."""
        if self._disk is None:
            return
        if document is None:
            self._disk.forget(url)
        else:
            self._disk.save(url, document)
