"""NGSI-LD entity operations on top of a `Store`: each runs a pure operation from
`cityhub.ngsild.operations` inside one store transaction and reports per-entity outcomes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cityhub.ngsild import operations as ops
from cityhub.ngsild.errors import AlreadyExists, BadRequestData, NgsiLdError, ResourceNotFound
from cityhub.ngsild.model import Entity, Instance
from cityhub.ngsild.payload import format_datetime
from cityhub.store.port import Change, Mutation, Store, Touched

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class BatchOutcome:
    """Per-entity result of a batch operation (the spec's BatchOperationResult)."""

    success: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


def _one_mutation(entity_id: str, change: Callable[[Entity], Entity | None],
                  touched: tuple[str, ...] | None = None) -> Mutation:
    """The mutation that applies `change` to one existing entity; `touched`: the only
    attributes `change` can modify, if known (see `Touched`)."""
    def mutation(current: Mapping[str, Entity | None]) -> dict[str, Entity | None]:
        entity = current[entity_id]
        if entity is None:
            raise ResourceNotFound(f"entity {entity_id} does not exist", instance=entity_id)
        result = {entity_id: change(entity)}
        return result if touched is None else Touched(result, {entity_id: touched})

    return mutation


def _partial_update(entity_id: str, iri: str, fragment: list[Instance], now: str) -> Mutation:
    def change(entity: Entity) -> Entity:
        ops.partial_update_attr(entity, iri, fragment, now)
        return entity

    return _one_mutation(entity_id, change, (iri,))


def _update_attrs(
    entity_id: str, attrs: dict[str, list[Instance]], now: str
) -> tuple[Mutation, Callable[[], ops.UpdateResult]]:
    """The mutation of an update of existing attributes, and a getter of its outcome (set
    when the mutation runs: the group committer may run it on its own thread)."""
    outcome = ops.UpdateResult()

    def change(entity: Entity) -> Entity:
        nonlocal outcome
        outcome = ops.update_attrs(entity, attrs, now)
        return entity

    return _one_mutation(entity_id, change, tuple(attrs)), lambda: outcome


class EntityService:
    """The write side of the NGSI-LD API; reads go to the store directly."""

    def __init__(self, store: Store, clock: Clock = utc_now) -> None:
        self.store = store
        self.clock = clock

    def _now(self) -> str:
        return format_datetime(self.clock())

    def _one(
        self, tenant: str, entity_id: str, change: Callable[[Entity], Entity | None]
    ) -> list[Change]:
        return self.store.modify(tenant, [entity_id], _one_mutation(entity_id, change),
                                 self._now())

    def create(self, tenant: str, entity: Entity) -> None:
        now = self._now()

        def mutation(current: Mapping[str, Entity | None]) -> dict[str, Entity | None]:
            if current[entity["id"]] is not None:
                raise AlreadyExists(f"entity {entity['id']} already exists", instance=entity["id"])
            return {entity["id"]: ops.new_entity(entity, now)}

        self.store.modify(tenant, [entity["id"]], mutation, now)

    def replace(self, tenant: str, entity: Entity) -> None:
        now = self._now()
        self._one(tenant, entity["id"], lambda old: ops.replace_entity(old, entity, now))

    def delete(self, tenant: str, entity_id: str) -> None:
        self._one(tenant, entity_id, lambda _old: None)

    def append_attrs(
        self, tenant: str, entity_id: str, attrs: dict[str, list[Instance]], *, overwrite: bool
    ) -> ops.UpdateResult:
        now, outcome = self._now(), ops.UpdateResult()

        def change(entity: Entity) -> Entity:
            nonlocal outcome
            outcome = ops.append_attrs(entity, attrs, now, overwrite=overwrite)
            return entity

        self._one(tenant, entity_id, change)
        return outcome

    def update_attrs(
        self, tenant: str, entity_id: str, attrs: dict[str, list[Instance]]
    ) -> ops.UpdateResult:
        now = self._now()
        mutation, outcome = _update_attrs(entity_id, attrs, now)
        self.store.modify(tenant, [entity_id], mutation, now)
        return outcome()

    async def update_attrs_async(
        self, tenant: str, entity_id: str, attrs: dict[str, list[Instance]]
    ) -> ops.UpdateResult:
        """`update_attrs` on the event loop, as `partial_update_attr_async`."""
        now = self._now()
        mutation, outcome = _update_attrs(entity_id, attrs, now)
        await self.store.modify_async(tenant, [entity_id], mutation, now)  # type: ignore[attr-defined]
        return outcome()

    def partial_update_attr(
        self, tenant: str, entity_id: str, iri: str, fragment: list[Instance]
    ) -> None:
        now = self._now()
        self.store.modify(tenant, [entity_id], _partial_update(entity_id, iri, fragment, now),
                          now)

    async def partial_update_attr_async(
        self, tenant: str, entity_id: str, iri: str, fragment: list[Instance]
    ) -> None:
        """`partial_update_attr` on the event loop, for a store with `modify_async` (the SQL
        store: its group committer answers the coroutine, no worker thread waits)."""
        now = self._now()
        await self.store.modify_async(  # type: ignore[attr-defined]
            tenant, [entity_id], _partial_update(entity_id, iri, fragment, now), now)

    def replace_attr(
        self, tenant: str, entity_id: str, iri: str, instances: list[Instance]
    ) -> None:
        now = self._now()

        def change(entity: Entity) -> Entity:
            ops.replace_attr(entity, iri, instances, now)
            return entity

        self._one(tenant, entity_id, change)

    def delete_attr(
        self, tenant: str, entity_id: str, iri: str, dataset_id: str | None, delete_all: bool
    ) -> None:
        now = self._now()

        def change(entity: Entity) -> Entity:
            ops.delete_attr(entity, iri, now, dataset_id=dataset_id, delete_all=delete_all)
            return entity

        self._one(tenant, entity_id, change)

    def merge(self, tenant: str, entity_id: str, patch: Entity) -> None:
        now = self._now()

        def change(entity: Entity) -> Entity:
            ops.merge_entity(entity, patch, now)
            return entity

        self._one(tenant, entity_id, change)

    # -- batch operations (/entityOperations) -------------------------------------------------

    def batch(
        self,
        tenant: str,
        mode: str,
        entities: list[Entity],
        *,
        replace: bool = True,
        overwrite: bool = True,
    ) -> BatchOutcome:
        """mode: create | upsert | update | merge. One transaction; failures are per entity."""
        now, outcome = self._now(), BatchOutcome()
        # An id given twice is ambiguous: none of its entities is applied, each repeat reported.
        seen: set[str] = set()
        for entity in entities:
            if entity["id"] in seen:
                outcome.errors.append((entity["id"], BadRequestData(
                    f"entity {entity['id']} appears more than once in one batch")))
            seen.add(entity["id"])
        repeated = {entity_id for entity_id, _ in outcome.errors}
        unique = [e for e in entities if e["id"] not in repeated]

        def mutation(current: Mapping[str, Entity | None]) -> dict[str, Entity | None]:
            result: dict[str, Entity | None] = {}
            for entity in unique:
                entity_id = entity["id"]
                old = current[entity_id]
                try:
                    result[entity_id] = self._batch_one(mode, old, entity, now, replace, overwrite)
                except NgsiLdError as error:
                    outcome.errors.append((entity_id, error))
                    continue
                outcome.success.append(entity_id)
                if old is None:
                    outcome.created.append(entity_id)
            return result

        self.store.modify(tenant, [e["id"] for e in unique], mutation, now)
        return outcome

    @staticmethod
    def _batch_one(
        mode: str, old: Entity | None, entity: Entity, now: str, replace: bool, overwrite: bool
    ) -> Entity:
        entity_id = entity["id"]
        if mode == "create" or (mode == "upsert" and old is None):
            if old is not None:
                raise AlreadyExists(f"entity {entity_id} already exists", instance=entity_id)
            if "type" not in entity:
                raise BadRequestData(f"entity {entity_id} has no type")
            return ops.new_entity(entity, now)
        if old is None:
            raise ResourceNotFound(f"entity {entity_id} does not exist", instance=entity_id)
        if mode == "upsert" and replace:
            return ops.replace_entity(old, entity, now)
        if mode == "merge":
            ops.merge_entity(old, entity, now)
            return old
        if "type" in entity:
            old["type"] = sorted(set(old["type"]) | set(entity["type"]))
        ops.append_attrs(old, entity["attrs"], now, overwrite=overwrite)
        return old

    def delete_many(self, tenant: str, ids: list[str]) -> BatchOutcome:
        outcome = BatchOutcome()

        def mutation(current: Mapping[str, Entity | None]) -> dict[str, Entity | None]:
            result: dict[str, Entity | None] = {}
            for entity_id in ids:
                if current[entity_id] is None:
                    outcome.errors.append(
                        (entity_id, ResourceNotFound(f"entity {entity_id} does not exist"))
                    )
                else:
                    result[entity_id] = None
                    outcome.success.append(entity_id)
            return result

        self.store.modify(tenant, list(dict.fromkeys(ids)), mutation, self._now())
        return outcome
