"""The @contexts the hub stores and serves: the domain of /jsonldContexts (ETSI GS CIM 009 5.13).

Three kinds of stored @context (clause 5.13.1):

- **Hosted**: added by a client (`add`); the hub serves it at
  `{base_url}/ngsi-ld/v1/jsonldContexts/{id}`, and that URL resolves through the
  `DocumentLoader` without any network use, so clients can put it in a Link header.
- **ImplicitlyCreated**: an inline or list @context the hub had to give a URL to
  (`ensure_implicit`, e.g. for notifications sent as application/json); its id is a hash of the
  content, so every replica mints the same URL for the same context.
- **Cached**: a copy of a remote context the loader fetched (`remember`). It is listed and can
  be deleted or reloaded, but not served (its original URL is where clients fetch it). The
  bundled NGSI-LD core context is listed as Cached too and can be neither deleted nor reloaded.

Records live behind the small `ContextStorage` port; `MemoryContextStorage` is the in-memory
adapter. Usage (`numberOfHits`, `lastUsage`) counts how often the loader served a stored
context; it is counted in memory and written to storage by `flush_usage` (called by `list` and
`get`), so counting costs no storage write on the request path.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from cityhub.ngsild.context_loader import (
    Fetch,
    JsonDocument,
    core_context,
    is_context_value,
    is_core_context_url,
)
from cityhub.ngsild.errors import (
    BadRequestData,
    LdContextNotAvailable,
    OperationNotSupported,
    ResourceNotFound,
)
from cityhub.ngsild.model import CORE_CONTEXT_URL

ContextKind = Literal["Hosted", "Cached", "ImplicitlyCreated"]
KINDS: tuple[ContextKind, ...] = ("Hosted", "Cached", "ImplicitlyCreated")
SERVE_PATH = "/ngsi-ld/v1/jsonldContexts/"
CORE_ID = "ngsi-ld-core-context"
Clock = Callable[[], datetime]
Listener = Callable[[str, JsonDocument | None], None]
"""Told `(url, new document)` after a reload and `(url, None)` after a delete."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class ContextRecord:
    """One stored @context. `document` is the whole document: `{"@context": ...}`."""

    id: str
    url: str
    kind: ContextKind
    document: JsonDocument
    created_at: datetime
    hits: int = 0
    last_usage: datetime | None = None


class ContextStorage(Protocol):
    """Persistence port for stored @contexts; `id` and `url` are both unique keys."""

    def get(self, context_id: str) -> ContextRecord | None:
        """The record with this local id, or None."""
        ...

    def get_by_url(self, url: str) -> ContextRecord | None:
        """The record whose `url` is exactly this, or None."""
        ...

    def put(self, record: ContextRecord) -> None:
        """Insert the record, or replace the one with the same id."""
        ...

    def delete(self, context_id: str) -> bool:
        """Remove the record; False when there was none."""
        ...

    def list(self) -> Sequence[ContextRecord]:
        """Every record, oldest `created_at` first."""
        ...


class MemoryContextStorage:
    """The in-memory `ContextStorage` adapter (embedded default and tests)."""

    def __init__(self) -> None:
        self._by_id: dict[str, ContextRecord] = {}
        self._lock = threading.Lock()

    def get(self, context_id: str) -> ContextRecord | None:
        return self._by_id.get(context_id)

    def get_by_url(self, url: str) -> ContextRecord | None:
        with self._lock:
            return next((r for r in self._by_id.values() if r.url == url), None)

    def put(self, record: ContextRecord) -> None:
        with self._lock:
            self._by_id[record.id] = record

    def delete(self, context_id: str) -> bool:
        with self._lock:
            return self._by_id.pop(context_id, None) is not None

    def list(self) -> Sequence[ContextRecord]:
        with self._lock:
            return sorted(self._by_id.values(), key=lambda r: r.created_at)


class ContextRegistry:
    """Stores, lists, serves and deletes @contexts; also the `ContextStore` of the loader."""

    def __init__(
        self,
        storage: ContextStorage,
        *,
        base_url: str,
        fetch: Fetch | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._storage = storage
        self._serve_prefix = base_url.rstrip("/") + SERVE_PATH
        self._fetch = fetch
        self._clock = clock
        self._started = clock()
        self._listeners: list[Listener] = []
        self._usage: dict[str, tuple[int, datetime]] = {}
        self._usage_lock = threading.Lock()

    def add_listener(self, listener: Listener) -> None:
        """Call `listener` whenever a stored context is reloaded or deleted."""
        self._listeners.append(listener)

    def served_url(self, context_id: str) -> str:
        return self._serve_prefix + context_id

    # -- the /jsonldContexts operations ---------------------------------------------------------

    def add(self, body: object) -> ContextRecord:
        """Store a user @context (5.13.2) of kind Hosted; `body` is `{"@context": ...}`."""
        if not isinstance(body, dict) or "@context" not in body:
            raise BadRequestData("the payload must be a JSON object with an @context member")
        context = body["@context"]
        if context is None or not is_context_value(context):
            raise BadRequestData("@context must be a URL, a JSON object or a list of those")
        context_id = uuid.uuid4().hex
        record = ContextRecord(
            id=context_id,
            url=self.served_url(context_id),
            kind="Hosted",
            document={"@context": context},
            created_at=self._clock(),
        )
        self._storage.put(record)
        return record

    def ensure_implicit(self, context: object) -> str:
        """A URL for `context`: itself when it is one URL, else an ImplicitlyCreated copy's URL."""
        if isinstance(context, str):
            return context
        if context is None or not is_context_value(context):
            raise BadRequestData("@context must be a URL, a JSON object or a list of those")
        canonical = json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        context_id = hashlib.sha256(canonical.encode()).hexdigest()[:32]
        if self._storage.get(context_id) is None:
            self._storage.put(
                ContextRecord(
                    id=context_id,
                    url=self.served_url(context_id),
                    kind="ImplicitlyCreated",
                    document={"@context": context},
                    created_at=self._clock(),
                )
            )
        return self.served_url(context_id)

    def list(self, *, details: bool = False, kind: str | None = None) -> list[Any]:
        """5.13.3: the URLs of the stored contexts, or their metadata with `details`."""
        if kind is not None and kind not in KINDS:
            raise BadRequestData(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        self.flush_usage()
        records = [self._core_record(), *self._storage.list()]
        chosen = [r for r in records if kind is None or r.kind == kind]
        return [self.describe(r) for r in chosen] if details else [r.url for r in chosen]

    def get(self, context_id: str, *, details: bool = False) -> dict[str, Any]:
        """5.13.4: the stored document (Hosted, ImplicitlyCreated) or, with `details`, metadata."""
        record = self._find(context_id)
        if details:
            self.flush_usage()
            return self.describe(self._find(context_id))
        if record.kind == "Cached":
            raise OperationNotSupported(
                f"@context {context_id} is a cached copy of {record.url}: fetch it from there, "
                "or ask for its metadata with details=true"
            )
        return copy.deepcopy(record.document)

    def delete(self, context_id: str, *, reload: bool = False) -> None:
        """5.13.5: remove a stored context or, with `reload`, download a Cached one again."""
        record = self._find(context_id)
        if record.id == CORE_ID:
            raise BadRequestData(
                "the NGSI-LD core @context is built in: it cannot be deleted or reloaded"
            )
        if reload:
            if record.kind != "Cached":
                raise BadRequestData(
                    f"only Cached @contexts can be reloaded; {context_id} is {record.kind}"
                )
            if self._fetch is None:
                raise LdContextNotAvailable(
                    f"@context {record.url} cannot be reloaded: remote fetching is disabled"
                )
            document = self._fetch(record.url)
            self._storage.put(
                replace(
                    record, document=document, created_at=self._clock(), hits=0, last_usage=None
                )
            )
            self._changed(record.url, document)
            return
        self._storage.delete(record.id)
        self._changed(record.url, None)

    def describe(self, record: ContextRecord) -> dict[str, Any]:
        """The metadata object of one stored context (5.13.3.5)."""
        out: dict[str, Any] = {
            "URL": record.url,
            "localId": record.id,
            "kind": record.kind,
            "createdAt": _timestamp(record.created_at),
        }
        if record.last_usage is not None:
            out["lastUsage"] = _timestamp(record.last_usage)
        if record.kind == "Cached" or record.hits:
            out["numberOfHits"] = record.hits
        return out

    # -- the ContextStore of the DocumentLoader ------------------------------------------------

    def stored_document(self, url: str) -> JsonDocument | None:
        record = self._storage.get_by_url(url)
        if record is None:
            # A URL of ours under another host name (localhost vs 127.0.0.1, ...): ids are
            # random or content hashes, so the id alone names the document.
            path = urlsplit(url).path
            if SERVE_PATH in path:
                record = self._storage.get(path.rsplit(SERVE_PATH, 1)[1])
        if record is None and url.startswith(self._serve_prefix):
            raise LdContextNotAvailable(f"@context {url} is not (or no longer) stored in this hub")
        if record is None or record.kind == "Cached":
            return None
        self._note_usage(record.url)
        return record.document

    def cached_document(self, url: str) -> JsonDocument | None:
        record = self._storage.get_by_url(url)
        if record is None or record.kind != "Cached":
            return None
        self._note_usage(url)
        return record.document

    def remember(self, url: str, document: JsonDocument) -> None:
        record = self._storage.get_by_url(url)
        if record is not None:
            self._storage.put(replace(record, document=document))
            return
        self._storage.put(
            ContextRecord(
                id=uuid.uuid4().hex,
                url=url,
                kind="Cached",
                document=document,
                created_at=self._clock(),
            )
        )

    def flush_usage(self) -> None:
        """Write the usage counted since the last flush to storage."""
        with self._usage_lock:
            pending, self._usage = self._usage, {}
        for url, (hits, last) in pending.items():
            record = self._storage.get_by_url(url)
            if record is not None:
                newest = max(last, record.last_usage) if record.last_usage else last
                self._storage.put(replace(record, hits=record.hits + hits, last_usage=newest))

    # -- internals ---------------------------------------------------------------------------------

    def _note_usage(self, url: str) -> None:
        now = self._clock()
        with self._usage_lock:
            hits, _ = self._usage.get(url, (0, now))
            self._usage[url] = (hits + 1, now)

    def _core_record(self) -> ContextRecord:
        return ContextRecord(
            id=CORE_ID,
            url=CORE_CONTEXT_URL,
            kind="Cached",
            document=core_context(),
            created_at=self._started,
        )

    def _find(self, context_id: str) -> ContextRecord:
        if context_id == CORE_ID or is_core_context_url(context_id):
            return self._core_record()
        record = self._storage.get(context_id) or self._storage.get_by_url(context_id)
        if record is None:
            raise ResourceNotFound(f"no stored @context has the id or URL {context_id}")
        return record

    def _changed(self, url: str, document: JsonDocument | None) -> None:
        for listener in self._listeners:
            listener(url, document)
