"""The `Store` port: what the hub needs from wherever entities, history and subscriptions live."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cityhub.ngsild.model import Entity

# Given the stored entities for the asked ids (None where absent), return the new state of those
# that change (None deletes). Ids left out of the result stay as they are.
Mutation = Callable[[Mapping[str, Entity | None]], Mapping[str, Entity | None]]


class Touched(dict[str, Entity | None]):
    """A mutation's result that also names, per entity, the only attributes the mutation may
    have changed (besides the entity's modifiedAt). The store then compares only these
    attributes' instances with the stored ones to find what changed, instead of all of them;
    what it reports and records is the same."""

    def __init__(self, result: Mapping[str, Entity | None],
                 attrs: Mapping[str, tuple[str, ...]]) -> None:
        super().__init__(result)
        self.attrs = attrs


@dataclass(frozen=True)
class EntityQuery:
    """A parsed, expanded entity query. `q`, `types`, `scope` are ASTs of cityhub.ngsild.query;
    `geo` is a cityhub.ngsild.geo.GeoQuery whose property is already an IRI."""

    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    types: Any = None
    q: Any = None
    scope: Any = None
    attrs_any: tuple[str, ...] | None = None
    geo: Any = None
    geo_property: str | None = None
    limit: int = 20
    offset: int = 0
    count: bool = False


@dataclass
class QueryResult:
    entities: list[Entity]
    count: int | None = None


@dataclass(frozen=True)
class Change:
    """One entity write as subscriptions and the bus see it."""

    tenant: str
    entity_id: str
    operation: str  # "create" | "update" | "delete"
    attrs: tuple[str, ...]  # expanded names of the attributes that changed
    entity: Entity | None  # the entity after the change (None after a delete)
    previous: Entity | None  # the entity before (None on create)
    at: str


@dataclass(frozen=True)
class TypeInfo:
    type: str
    entity_count: int
    attributes: Mapping[str, frozenset[str]] = field(default_factory=dict)  # attr -> kinds


@dataclass(frozen=True)
class AttributeInfo:
    attribute: str
    entity_count: int
    kinds: frozenset[str]
    types: frozenset[str]


class Store(Protocol):
    """Entities of every tenant; writes go through `modify`, which records history and changes."""

    def get(self, tenant: str, entity_id: str) -> Entity | None: ...

    async def get_async(self, tenant: str, entity_id: str) -> Entity | None:
        """`get` for a coroutine on the event loop (`Database.fetch_one_async`)."""
        ...

    def query(self, tenant: str, query: EntityQuery, *,
              deadline: float | None = None) -> QueryResult:
        """The entities `query` selects. With a `deadline` (a `time.perf_counter()` value) the
        read stops with `OverBudget` once it has passed, having changed nothing."""
        ...

    def modify(self, tenant: str, ids: list[str], mutation: Mutation, now: str) -> list[Change]:
        """Apply `mutation` atomically to the entities `ids` and return what changed."""
        ...

    def tenant_exists(self, tenant: str) -> bool: ...

    def types(self, tenant: str) -> list[TypeInfo]: ...

    def attributes(self, tenant: str) -> list[AttributeInfo]: ...

    def close(self) -> None: ...
