"""The store, the entity service and the history reader as one principal may use them.

Each wrapper holds a `Guard`: reads come back minimised (entities not readable vanish from
queries, are refused by id, and lose attributes outside a grant, including their history);
writes are refused unless the policy permits them. The API picks these wrappers through one
dependency when authentication is on, and the bare objects when it is off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from cityhub.governance.guard import AccessDenied, Guard
from cityhub.ngsild import temporal as tl
from cityhub.ngsild.errors import ResourceNotFound
from cityhub.ngsild.model import LOCATION, Entity, Instance
from cityhub.ngsild.operations import UpdateResult
from cityhub.ngsild.query.evaluate import matches
from cityhub.store.port import (
    AttributeInfo,
    Change,
    EntityQuery,
    Mutation,
    QueryResult,
    Store,
    TypeInfo,
)
from cityhub.store.service import BatchOutcome, EntityService
from cityhub.store.temporal import TemporalStore


class GuardedStore:
    """A `Store` whose reads pass the guard; writes go through `GuardedService`.

    `inline`: whether the guard may look up the catalogue and grants on the event loop in
    `get_async` (SQLite: a page-cache read), or must do so in a worker thread (PostgreSQL: a
    round trip)."""

    def __init__(self, store: Store, guard: Guard, *, inline: bool = True) -> None:
        self.inner = store
        self.guard = guard
        self.inline = inline

    def get(self, tenant: str, entity_id: str) -> Entity | None:
        return self._visible(tenant, self.inner.get(tenant, entity_id))

    async def get_async(self, tenant: str, entity_id: str) -> Entity | None:
        entity = await self.inner.get_async(tenant, entity_id)
        if entity is None or self.inline:
            return self._visible(tenant, entity)
        return await asyncio.to_thread(self._visible, tenant, entity)

    def _visible(self, tenant: str, entity: Entity | None) -> Entity | None:
        if entity is None:
            return None
        visible = self.guard.readable(tenant, entity)
        if visible is None:
            raise self.guard.denial(self.guard.resource(tenant, entity), "read")
        return visible

    def query(self, tenant: str, query: EntityQuery, *,
              deadline: float | None = None) -> QueryResult:
        result = self.inner.query(tenant, query, deadline=deadline)
        kept: list[Entity] = []
        for entity in result.entities:
            visible = self.guard.readable(tenant, entity)
            if visible is None:
                continue
            if visible is not entity and not self._still_matches(visible, query):
                continue  # matched only through attributes outside the grant
            kept.append(visible)
        count = result.count
        if count is not None:
            count -= len(result.entities) - len(kept)
        return QueryResult(kept, count)

    @staticmethod
    def _still_matches(entity: Entity, query: EntityQuery) -> bool:
        if query.q is not None and not matches(query.q, entity):
            return False
        if query.attrs_any is not None and not any(a in entity["attrs"]
                                                   for a in query.attrs_any):
            return False
        return query.geo is None or (query.geo_property or LOCATION) in entity["attrs"]

    def modify(self, tenant: str, ids: list[str], mutation: Mutation, now: str) -> list[Change]:
        return self.inner.modify(tenant, ids, mutation, now)

    def tenant_exists(self, tenant: str) -> bool:
        return self.inner.tenant_exists(tenant)

    def _type_readable(self, tenant: str, entity_type: str) -> bool:
        probe: Entity = {"id": "", "type": [entity_type], "attrs": {}}
        datasets = self.guard.catalogue.for_type(tenant, entity_type)
        resources = [self.guard.resource(tenant, probe)] if not datasets else [
            self.guard.resource(tenant, {**probe, "scope": [d.scope] if d.scope else []})
            for d in datasets]
        return any(self.guard.view(r) is not None for r in resources)

    def types(self, tenant: str) -> list[TypeInfo]:
        return [t for t in self.inner.types(tenant) if self._type_readable(tenant, t.type)]

    def attributes(self, tenant: str) -> list[AttributeInfo]:
        out = []
        for info in self.inner.attributes(tenant):
            types = frozenset(t for t in info.types if self._type_readable(tenant, t))
            if types:
                out.append(AttributeInfo(info.attribute, info.entity_count, info.kinds, types))
        return out

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # db, listeners...: the wrapped store's
        return getattr(self.inner, name)


class GuardedService(EntityService):
    """The write side, refusing what the policy does not permit (per entity in batches)."""

    def __init__(self, service: EntityService, guard: Guard) -> None:
        super().__init__(service.store, service.clock)
        self.guard = guard

    def _existing(self, tenant: str, entity_id: str, action: str = "write") -> None:
        current = self.store.get(tenant, entity_id)
        if current is None:
            raise ResourceNotFound(f"entity {entity_id} does not exist", instance=entity_id)
        self.guard.check_write(tenant, current, action)

    def create(self, tenant: str, entity: Entity) -> None:
        self.guard.check_write(tenant, entity)
        super().create(tenant, entity)

    def replace(self, tenant: str, entity: Entity) -> None:
        self._existing(tenant, entity["id"])
        if entity.get("type"):
            self.guard.check_write(tenant, entity)
        super().replace(tenant, entity)

    def delete(self, tenant: str, entity_id: str) -> None:
        self._existing(tenant, entity_id, "delete")
        super().delete(tenant, entity_id)

    def append_attrs(self, tenant: str, entity_id: str, attrs: dict[str, list[Instance]], *,
                     overwrite: bool) -> UpdateResult:
        self._existing(tenant, entity_id)
        return super().append_attrs(tenant, entity_id, attrs, overwrite=overwrite)

    def update_attrs(self, tenant: str, entity_id: str, attrs: dict[str, list[Instance]]
                     ) -> UpdateResult:
        self._existing(tenant, entity_id)
        return super().update_attrs(tenant, entity_id, attrs)

    def partial_update_attr(self, tenant: str, entity_id: str, iri: str,
                            fragment: list[Instance]) -> None:
        self._existing(tenant, entity_id)
        super().partial_update_attr(tenant, entity_id, iri, fragment)

    def replace_attr(self, tenant: str, entity_id: str, iri: str, instances: list[Instance]
                     ) -> None:
        self._existing(tenant, entity_id)
        super().replace_attr(tenant, entity_id, iri, instances)

    def delete_attr(self, tenant: str, entity_id: str, iri: str, dataset_id: str | None,
                    delete_all: bool) -> None:
        self._existing(tenant, entity_id)
        super().delete_attr(tenant, entity_id, iri, dataset_id, delete_all)

    def merge(self, tenant: str, entity_id: str, patch: Entity) -> None:
        self._existing(tenant, entity_id)
        super().merge(tenant, entity_id, patch)

    def batch(self, tenant: str, mode: str, entities: list[Entity], *, replace: bool = True,
              overwrite: bool = True) -> BatchOutcome:
        allowed, refused = [], []
        for entity in entities:
            try:
                target = entity if entity.get("type") else self.store.get(tenant, entity["id"])
                if target is not None:
                    self.guard.check_write(tenant, target)
                    if target is not entity and entity.get("type"):
                        self.guard.check_write(tenant, entity)
            except AccessDenied as error:
                refused.append((entity["id"], error))
                continue
            allowed.append(entity)
        outcome = super().batch(tenant, mode, allowed, replace=replace, overwrite=overwrite)
        outcome.errors.extend(refused)
        return outcome

    def delete_many(self, tenant: str, ids: list[str]) -> BatchOutcome:
        allowed, refused = [], []
        for entity_id in ids:
            current = self.store.get(tenant, entity_id)
            try:
                if current is not None:
                    self.guard.check_write(tenant, current, "delete")
            except AccessDenied as error:
                refused.append((entity_id, error))
                continue
            allowed.append(entity_id)
        outcome = super().delete_many(tenant, allowed) if allowed else BatchOutcome()
        outcome.errors.extend(refused)
        return outcome


class GuardedTemporal:
    """The history reader and writer, limited like the entities (history of attributes
    outside a grant is never read)."""

    def __init__(self, temporal: TemporalStore, store: Store, guard: Guard) -> None:
        self.inner = temporal
        self.store = store  # the bare store, to learn an entity's dataset
        self.guard = guard

    def _current(self, tenant: str, entity_id: str) -> Entity:
        current = self.store.get(tenant, entity_id)
        if current is None:
            raise ResourceNotFound(f"entity {entity_id} does not exist", instance=entity_id)
        return current

    def attributes(self, tenant: str, entity_id: str, *,
                   deadline: float | None = None) -> list[str]:
        names = self.inner.attributes(tenant, entity_id, deadline=deadline)
        allowed = self.guard.readable_attributes(tenant, self._current(tenant, entity_id))
        return names if allowed is None else [n for n in names if n in allowed]

    def read(self, tenant: str, entity: Entity, query: tl.TemporalQuery,
             attrs: Collection[str] | None = None, *,
             deadline: float | None = None) -> dict[str, tl.Series]:
        allowed = self.guard.readable_attributes(tenant, entity)
        if allowed is not None:
            wanted = set(self.inner.attributes(tenant, entity["id"], deadline=deadline)
                         if attrs is None else attrs)
            attrs = sorted(wanted & allowed)
        return self.inner.read(tenant, entity, query, attrs, deadline=deadline)

    def upsert(self, tenant: str, temporal: Entity, *, must_exist: bool = False) -> bool:
        current = self.store.get(tenant, temporal["id"])
        if current is not None:
            self.guard.check_write(tenant, current)
        if temporal.get("type"):
            self.guard.check_write(tenant, temporal)
        return self.inner.upsert(tenant, temporal, must_exist=must_exist)

    def delete_entity(self, tenant: str, entity_id: str) -> None:
        self.guard.check_write(tenant, self._current(tenant, entity_id), "delete")
        self.inner.delete_entity(tenant, entity_id)

    def delete_attribute(self, tenant: str, entity_id: str, iri: str, dataset_id: str | None,
                         delete_all: bool) -> None:
        self.guard.check_write(tenant, self._current(tenant, entity_id))
        self.inner.delete_attribute(tenant, entity_id, iri, dataset_id, delete_all)

    def modify_instance(self, tenant: str, entity_id: str, iri: str, instance_id: str,
                        instance: Instance) -> None:
        self.guard.check_write(tenant, self._current(tenant, entity_id))
        self.inner.modify_instance(tenant, entity_id, iri, instance_id, instance)

    def delete_instance(self, tenant: str, entity_id: str, iri: str, instance_id: str) -> None:
        self.guard.check_write(tenant, self._current(tenant, entity_id))
        self.inner.delete_instance(tenant, entity_id, iri, instance_id)


def minimise_all(guard: Guard, tenant: str, entities: list[Entity]) -> list[Entity]:
    """The entities a principal may see, minimised (for notifications and exports)."""
    out = []
    for entity in entities:
        visible = guard.readable(tenant, entity)
        if visible is not None:
            out.append(visible)
    return out
