"""Processed @contexts as term maps: term <-> IRI in a dict lookup, built once per context.

`ContextResolver.term_map(context)` processes a request's @context with pyld (the JSON-LD 1.1
context processing algorithm, remote contexts through the `DocumentLoader`) with the NGSI-LD
core context appended last, so its protected terms and its `@vocab` (the default context
`https://uri.etsi.org/ngsi-ld/default-context/`) always win, as ETSI GS CIM 009 requires.
Core context URLs inside the request's list are dropped first, so "core last" holds even when a
client lists the core context before its own terms.

`TermMap` then answers with the JSON-LD IRI expansion and compaction rules restricted to what
NGSI-LD needs for names (entity types, attribute names, VocabProperty values): a term maps to its
IRI; `prefix:suffix` with a defined prefix expands through the prefix; other absolute IRIs stay
as they are; everything else is appended to `@vocab`. Compaction picks the shortest (then
alphabetically first) term mapped to the IRI, else the @vocab-relative name, else the shortest
compact IRI, and only a form that expands back to the same IRI. Answers are memoised, so after
the first call for a name both directions are one dict lookup.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pyld.context_resolver import ContextResolver as PyldContextResolver
from pyld.jsonld import JsonLdProcessor

from cityhub.ngsild.context_loader import is_core_context_url
from cityhub.ngsild.errors import BadRequestData, NgsiLdError
from cityhub.ngsild.model import CORE_CONTEXT_URL, DEFAULT_VOCAB

ContextValue = str | dict[str, Any] | list[Any] | None
"""An @context as a request carries it: a URL, an inline object, a list of those, or None."""

DocumentLoaderCallable = Callable[[str, Any], dict[str, Any]]
MEMO_LIMIT = 100_000
"""Past this many remembered names per TermMap new answers are computed, not remembered."""


class TermMap:
    """A processed @context: `expand_term` and `compact_iri` (the `Terms` protocol) and friends."""

    __slots__ = ("_compacted", "_expanded", "_prefixes", "_terms", "vocab")

    def __init__(
        self, terms: Mapping[str, str | None], prefixes: Mapping[str, str], vocab: str
    ) -> None:
        self.vocab = vocab
        self._terms: dict[str, str | None] = dict(terms)
        self._prefixes = dict(prefixes)
        self._expanded: dict[str, str] = {
            t: iri for t, iri in self._terms.items() if iri is not None
        }
        self._compacted: dict[str, str] = {}
        for term, iri in sorted(self._expanded.items(), key=lambda item: (len(item[0]), item[0])):
            if not iri.startswith("@"):
                self._compacted.setdefault(iri, term)

    @classmethod
    def from_active_context(cls, active: Mapping[str, Any]) -> TermMap:
        """Build from a pyld active context (its `mappings` and `@vocab`)."""
        terms: dict[str, str | None] = {}
        prefixes: dict[str, str] = {}
        for term, definition in active["mappings"].items():
            if definition.get("reverse"):
                continue
            iri = definition.get("@id")
            if iri is None:  # the context maps the term to null: JSON-LD drops it
                terms[term] = None
                continue
            terms[term] = iri
            if definition.get("_prefix"):
                prefixes[term] = iri
        vocab = active.get("@vocab")
        return cls(terms, prefixes, vocab if isinstance(vocab, str) else DEFAULT_VOCAB)

    def expand_term(self, term: str) -> str:
        """The IRI of an entity type, attribute or VocabProperty name under this context."""
        try:
            return self._expanded[term]
        except KeyError:
            iri = self._expand(term)
            if len(self._expanded) < MEMO_LIMIT:
                self._expanded[term] = iri
            return iri

    def compact_iri(self, iri: str) -> str:
        """The short name of `iri` under this context (the IRI itself when none applies)."""
        try:
            return self._compacted[iri]
        except KeyError:
            name = self._compact(iri)
            if len(self._compacted) < MEMO_LIMIT:
                self._compacted[iri] = name
            return name

    def expand_vocab_value(self, value: object) -> str | list[str]:
        """Expand the `vocab` member of a VocabProperty (a name or a list of names)."""
        if isinstance(value, str):
            return self.expand_term(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [self.expand_term(v) for v in value]
        raise BadRequestData("a VocabProperty vocab must be a string or a list of strings")

    def compact_vocab_value(self, value: object) -> str | list[str]:
        """Compact the stored (expanded) `vocab` member of a VocabProperty."""
        if isinstance(value, str):
            return self.compact_iri(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [self.compact_iri(v) for v in value]
        raise BadRequestData("a VocabProperty vocab must be a string or a list of strings")

    def _expand(self, term: str) -> str:
        if term in self._terms:
            iri = self._terms[term]
            if iri is None:
                raise BadRequestData(f"the @context maps the term {term!r} to null")
            return iri
        if not term:
            raise BadRequestData("an empty name has no IRI")
        if term.startswith("@"):
            return term
        prefix, colon, suffix = term.partition(":")
        if colon:
            if prefix == "_" or suffix.startswith("//"):
                return term  # a blank node or an absolute IRI
            prefix_iri = self._prefixes.get(prefix)
            return prefix_iri + suffix if prefix_iri is not None else term
        return self.vocab + term

    def _expands_to(self, name: str, iri: str) -> bool:
        try:
            return self._expand(name) == iri
        except BadRequestData:
            return False

    def _compact(self, iri: str) -> str:
        if iri.startswith(self.vocab):
            suffix = iri[len(self.vocab) :]
            if suffix and self._expands_to(suffix, iri):
                return suffix
        best: str | None = None
        for prefix, prefix_iri in self._prefixes.items():
            if len(iri) > len(prefix_iri) and iri.startswith(prefix_iri):
                candidate = f"{prefix}:{iri[len(prefix_iri) :]}"
                shorter = best is None or (len(candidate), candidate) < (len(best), best)
                if shorter and self._expands_to(candidate, iri):
                    best = candidate
        return best if best is not None else iri


def _normalize(context: ContextValue) -> list[str | dict[str, Any] | None]:
    """The request's context as a list, core context URLs removed (the core goes last anyway)."""
    if context is None:
        return []
    items = context if isinstance(context, list) else [context]
    local: list[str | dict[str, Any] | None] = []
    for item in items:
        if isinstance(item, str):
            if is_core_context_url(item):
                continue
            parts = urlsplit(item)
            if not (parts.scheme and parts.netloc):
                raise BadRequestData(f"@context URL {item!r} is not an absolute URL")
            local.append(item)
        elif item is None or isinstance(item, dict):
            local.append(item)
        else:
            raise BadRequestData("an @context entry must be a URL, a JSON object or null")
    return local


def _ngsild_cause(exc: BaseException) -> NgsiLdError | None:
    """The domain error (e.g. LdContextNotAvailable from the loader) that pyld wrapped, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, NgsiLdError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _key(local: list[str | dict[str, Any] | None]) -> str:
    return json.dumps(local, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_NO_CONTEXT_KEY = _key([])


class ContextResolver:
    """Turns request @context values into cached `TermMap`s (a bounded LRU keyed by the value)."""

    def __init__(self, loader: DocumentLoaderCallable, *, max_entries: int = 256) -> None:
        self._loader = loader
        self._max = max_entries
        self._cache: OrderedDict[str, TermMap] = OrderedDict()
        self._lock = threading.Lock()

    def term_map(self, context: ContextValue = None) -> TermMap:
        """The TermMap of `context` with the core context last; None means the core alone."""
        local = _normalize(context)
        key = _key(local)
        with self._lock:
            held = self._cache.get(key)
            if held is not None:
                self._cache.move_to_end(key)
                return held
        built = self._build(local)
        with self._lock:
            self._cache[key] = built
            self._cache.move_to_end(key)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return built

    def cached(self, context: ContextValue = None) -> TermMap | None:
        """The TermMap of `context` if it is already built, else None (never loads anything).

        For callers on an event loop: a miss may need a fetch, which they run elsewhere."""
        key = _NO_CONTEXT_KEY if context is None else _key(_normalize(context))
        with self._lock:
            held = self._cache.get(key)
            if held is not None:
                self._cache.move_to_end(key)
            return held

    def clear(self) -> None:
        """Forget every TermMap (after a stored context changed)."""
        with self._lock:
            self._cache.clear()

    def _build(self, local: list[str | dict[str, Any] | None]) -> TermMap:
        processor = JsonLdProcessor()
        # A private pyld resolver cache per build: nothing leaks into pyld's global caches.
        options: dict[str, Any] = {
            "documentLoader": self._loader,
            "contextResolver": PyldContextResolver({}, self._loader),
        }
        try:
            initial = processor.process_context(None, None, options)
            active = processor.process_context(initial, [*local, CORE_CONTEXT_URL], options)
        except Exception as exc:  # pyld signals bad input with many exception types
            cause = _ngsild_cause(exc)
            if cause is not None:
                raise cause from exc
            message = exc.args[0] if exc.args else type(exc).__name__
            code = getattr(exc, "code", None)
            raise BadRequestData(
                f"invalid @context: {message}" + (f" ({code})" if code else "")
            ) from exc
        return TermMap.from_active_context(active)
