"""The one thing the entity code needs from a JSON-LD @context: term <-> IRI mapping."""

from __future__ import annotations

from typing import Protocol


class Terms(Protocol):
    """A processed @context: expands terms to IRIs and compacts IRIs back to terms."""

    def expand_term(self, term: str) -> str: ...

    def compact_iri(self, iri: str) -> str: ...
