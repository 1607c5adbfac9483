"""The NGSI-LD update operations as pure functions on internal entities.

Each takes the stored entity (or None) and a parsed payload and returns the new entity; the store
runs them inside its transaction and works out what changed. `now` is injected so that every
instance written by one request carries the same timestamp.

Parsed payloads are fresh objects owned by the operation, so their instances are stamped and
stored in place rather than copied (copying dominated the ingest profile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cityhub.ngsild.errors import BadRequestData, ResourceNotFound
from cityhub.ngsild.model import Entity, Instance
from cityhub.ngsild.payload import NULL


@dataclass
class UpdateResult:
    """Which attributes an append/update wrote, and which it did not, with the reason."""

    updated: list[str] = field(default_factory=list)
    not_updated: list[tuple[str, str]] = field(default_factory=list)


def _stamp(instance: Instance, now: str, created: str | None = None) -> Instance:
    instance["createdAt"] = created or now
    instance["modifiedAt"] = now
    for sub in instance.get("sub", {}).values():
        _stamp(sub, now, sub.get("createdAt"))
    return instance


def new_entity(parsed: Entity, now: str) -> Entity:
    entity = dict(parsed)
    entity["createdAt"] = entity["modifiedAt"] = now
    for instances in entity["attrs"].values():
        for instance in instances:
            _stamp(instance, now)
    return entity


def _find(instances: list[Instance], dataset_id: str | None) -> int | None:
    for index, instance in enumerate(instances):
        if instance.get("datasetId") == dataset_id:
            return index
    return None


def append_attrs(
    entity: Entity, attrs: dict[str, list[Instance]], now: str, *, overwrite: bool = True
) -> UpdateResult:
    """POST .../attrs: add attributes; existing ones are replaced unless overwrite is False."""
    result = UpdateResult()
    for iri, instances in attrs.items():
        current = entity["attrs"].setdefault(iri, [])
        for instance in instances:
            at = _find(current, instance.get("datasetId"))
            if at is None:
                current.append(_stamp(instance, now))
            elif overwrite:
                current[at] = _stamp(instance, now, current[at].get("createdAt"))
            else:
                result.not_updated.append((iri, "attribute exists and noOverwrite was asked"))
                continue
            result.updated.append(iri)
    entity["modifiedAt"] = now
    return result


def update_attrs(entity: Entity, attrs: dict[str, list[Instance]], now: str) -> UpdateResult:
    """PATCH .../attrs: replace only attributes (and datasetIds) the entity already has."""
    result = UpdateResult()
    for iri, instances in attrs.items():
        current = entity["attrs"].get(iri)
        for instance in instances:
            at = None if current is None else _find(current, instance.get("datasetId"))
            if current is None or at is None:
                result.not_updated.append((iri, "attribute (or datasetId) does not exist"))
                continue
            current[at] = _stamp(instance, now, current[at].get("createdAt"))
            result.updated.append(iri)
    if result.updated:
        entity["modifiedAt"] = now
    return result


def _json_copy(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists and scalars only): what copy.deepcopy
    gives for these, without its memo and dispatch (a partial update copies every member)."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value


def _merge_instance(old: Instance, patch: Instance, now: str) -> Instance | None:
    """Merge-patch one instance; returns None when the patch deletes it."""
    member_value = next((patch[m] for m in ("value", "object") if m in patch), None)
    if member_value == NULL:
        return None
    merged: Instance = _json_copy(old)
    if patch.get("type") not in (None, old["type"]) and patch["type"] != "Property":
        merged = {k: v for k, v in merged.items() if k in ("createdAt", "sub", "datasetId")}
    for key, value in patch.items():
        if key == "sub":
            subs = merged.setdefault("sub", {})
            for sub_iri, sub in value.items():
                if sub.get("value") == NULL:
                    subs.pop(sub_iri, None)
                elif sub_iri in subs:
                    merged_sub = _merge_instance(subs[sub_iri], sub, now)
                    if merged_sub is not None:
                        subs[sub_iri] = merged_sub
                else:
                    subs[sub_iri] = _stamp(_json_copy(sub), now)
            if not subs:
                del merged["sub"]
        elif key == "type" and patch["type"] == "Property" and old["type"] != "Property":
            continue  # a concise patch value keeps the attribute's own type
        else:
            merged[key] = _json_copy(value)
    merged["modifiedAt"] = now
    return merged


def partial_update_attr(entity: Entity, iri: str, patch: list[Instance], now: str) -> None:
    """PATCH .../attrs/{attrId}: merge the fragment into the existing attribute instance."""
    current = entity["attrs"].get(iri)
    if not current:
        raise ResourceNotFound(f"entity {entity['id']} has no attribute {iri}")
    for fragment in patch:
        at = _find(current, fragment.get("datasetId"))
        if at is None:
            raise ResourceNotFound(f"attribute {iri} has no instance with that datasetId")
        merged = _merge_instance(current[at], fragment, now)
        if merged is None:
            raise BadRequestData("a partial update cannot set a value to urn:ngsi-ld:null")
        current[at] = merged
    entity["modifiedAt"] = now


def replace_attr(entity: Entity, iri: str, instances: list[Instance], now: str) -> None:
    """PUT .../attrs/{attrId}: the attribute (which must exist) becomes exactly these instances."""
    current = entity["attrs"].get(iri)
    if not current:
        raise ResourceNotFound(f"entity {entity['id']} has no attribute {iri}")
    created = current[0].get("createdAt")
    entity["attrs"][iri] = [_stamp(i, now, created) for i in instances]
    entity["modifiedAt"] = now


def delete_attr(
    entity: Entity, iri: str, now: str, *, dataset_id: str | None = None, delete_all: bool = False
) -> None:
    current = entity["attrs"].get(iri)
    if not current:
        raise ResourceNotFound(f"entity {entity['id']} has no attribute {iri}")
    if delete_all:
        del entity["attrs"][iri]
    else:
        at = _find(current, dataset_id)
        if at is None:
            raise ResourceNotFound(f"attribute {iri} has no instance with datasetId {dataset_id}")
        del current[at]
        if not current:
            del entity["attrs"][iri]
    entity["modifiedAt"] = now


def merge_entity(entity: Entity, patch: Entity, now: str) -> None:
    """PATCH /entities/{id} (merge-patch): merge attributes; urn:ngsi-ld:null deletes."""
    if "type" in patch:
        entity["type"] = sorted(set(entity["type"]) | set(patch["type"]))
    if "scope" in patch:
        entity["scope"] = patch["scope"]
    for iri, instances in patch["attrs"].items():
        current = entity["attrs"].get(iri)
        for instance in instances:
            at = None if current is None else _find(current, instance.get("datasetId"))
            if current is None or at is None:
                if instance.get("value") != NULL:
                    entity["attrs"].setdefault(iri, []).append(_stamp(instance, now))
                continue
            merged = _merge_instance(current[at], instance, now)
            if merged is None:
                del current[at]
            else:
                current[at] = merged
        if iri in entity["attrs"] and not entity["attrs"][iri]:
            del entity["attrs"][iri]
    entity["modifiedAt"] = now


def replace_entity(entity: Entity, replacement: Entity, now: str) -> Entity:
    """PUT /entities/{id}: everything but id and createdAt comes from the replacement."""
    fresh = new_entity(replacement, now)
    fresh["createdAt"] = entity["createdAt"]
    if "type" not in fresh:
        fresh["type"] = entity["type"]
    return fresh
