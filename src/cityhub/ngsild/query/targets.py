"""Where an attribute path points inside an entity of the internal form (model.py).

A *node* is one place a path can address: an attribute instance's target value, one of its
core members (observedAt, unitCode, datasetId, createdAt, modifiedAt), a sub-attribute's
target value, or a member inside a compound value. Every instance of a multi-instance
attribute (datasetId) contributes its own nodes. The evaluator asks `nodes(entity, path)`;
the index stores `walk(entity)`; both go through `_seed`, so they see the same nodes, except
that `walk` leaves out the system timestamps (createdAt, modifiedAt) of attributes: those are
tested on the candidate entities in memory (plan.unindexed).

Target values (clause 4.9): Property, GeoProperty -> value; Relationship -> object;
ListRelationship -> the objects of objectList; LanguageProperty -> every string of the
languageMap (with `[lang]` the map is the compound value); ListProperty -> valueList;
VocabProperty -> vocab; JsonProperty -> json. Compound members never step into arrays
(ECMA-262 member access on an array is undefined). A node is keyed by a 64-bit hash of its
readable key (`path_text`, `text_key`); a node whose readable key is longer than MAX_KEY
characters is neither indexed nor matched, which bounds the work per node.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from cityhub.ngsild.model import VALUE_MEMBER, Entity
from cityhub.ngsild.query.ast import CORE_MEMBERS, SYSTEM_MEMBERS, Path
from cityhub.ngsild.query.values import Leaf, value_leaves

MAX_KEY = 300

PLAIN = "plain"
OBJECT = "object"
LANGUAGE = "language"

Node = tuple[Any, str]  # (value, mode)
INDEXED_MEMBERS = CORE_MEMBERS - SYSTEM_MEMBERS


_encode = json.JSONEncoder(ensure_ascii=False).encode


@lru_cache(maxsize=8192)
def _quoted(name: str) -> str:
    return _encode(name)


def path_text(segments: Sequence[str], members: Sequence[str] = ()) -> str:
    """The readable key of a node: a compact JSON array of the attribute, sub-attribute and
    core member names, with the compound member names as a trailing array (unambiguous for
    any names, unlike a dotted string), e.g. `["https://ex.org/speed","observedAt"]`."""
    key = ",".join(map(_quoted, segments))
    if members:
        key += ",[" + ",".join(map(_quoted, members)) + "]"
    return "[" + key + "]"


@lru_cache(maxsize=16384)
def text_key(text: str) -> int:
    """The stored key of a readable key: its 64-bit BLAKE2b digest as a signed integer.

    Hashed, not numbered, so neither writes nor queries need a lookup table; an integer
    keeps index entries short and cheap to compare. Two distinct texts share a key with
    probability 2**-64; among n distinct paths, some pair does with about n**2 / 2**65 (a
    million distinct paths: 3e-8). Should it happen, SQL would see the two paths' values
    as one node's (only in entities holding both paths); the in-memory evaluator would not."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big",
                          signed=True)


@lru_cache(maxsize=16384)
def path_key(segments: tuple[str, ...], members: tuple[str, ...] = ()) -> int | None:
    """The stored key of a node (`text_key(path_text(...))`), or None when its readable key
    is longer than MAX_KEY characters. Cached: this runs for every node of every write."""
    text = path_text(segments, members)
    return text_key(text) if len(text) <= MAX_KEY else None


def key_of(path: Path) -> int | None:
    """The stored key a path addresses, or None if no node can have it (too long)."""
    return path_key((path.attr, *path.sub), path.members)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _subs(instance: dict[str, Any]) -> dict[str, Any]:
    subs = instance.get("sub")
    return subs if isinstance(subs, dict) else {}


def _seed(instance: dict[str, Any]) -> Node:
    kind = instance.get("type")
    if kind == "Relationship":
        return instance.get("object"), OBJECT
    if kind == "ListRelationship":
        objects = instance.get("objectList")
        if isinstance(objects, list):
            objects = [o.get("object") if isinstance(o, dict) else o for o in objects]
        return objects, OBJECT
    if kind == "LanguageProperty":
        return instance.get("languageMap"), LANGUAGE
    member = VALUE_MEMBER.get(kind, "value") if isinstance(kind, str) else "value"
    return instance.get(member), PLAIN


def node_leaves(node: Node) -> list[Leaf]:
    value, mode = node
    if mode == LANGUAGE:
        if not isinstance(value, dict):
            return []
        return [leaf for text in value.values() for leaf in value_leaves(text)]
    return value_leaves(value, relationship=mode == OBJECT)


def nodes(entity: Entity, path: Path) -> list[Node]:
    """The nodes a path addresses in an entity (empty when the target does not exist)."""
    attrs = entity.get("attrs")
    if not isinstance(attrs, dict):
        return []
    instances = [i for i in _as_list(attrs.get(path.attr)) if isinstance(i, dict)]
    core = path.core
    for name in path.sub[:-1] if core else path.sub:
        instances = [s for i in instances for s in _as_list(_subs(i).get(name))
                     if isinstance(s, dict)]
    if core is not None:
        return [(i[core], PLAIN) for i in instances if core in i]
    found: list[Node] = []
    for instance in instances:
        value, mode = _seed(instance)
        if path.members:
            for member in path.members:
                if not isinstance(value, dict) or member not in value:
                    break
                value = value[member]
            else:
                found.append((value, PLAIN))
            continue
        found.append((value, mode))
    return found


def walk(entity: Entity) -> Iterator[tuple[int, Node]]:
    """Every node of an entity with its key, without recursion (payloads may nest deeply)."""
    attrs = entity.get("attrs")
    if not isinstance(attrs, dict):
        return
    stack: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        ((attr,), i) for attr, instances in attrs.items() for i in _as_list(instances)
        if isinstance(i, dict)
    ]
    while stack:
        segments, instance = stack.pop()
        key = path_key(segments)
        if key is None:
            continue
        value, mode = _seed(instance)
        yield key, (value, mode)
        for core in INDEXED_MEMBERS.intersection(instance):
            core_key = path_key((*segments, core))
            if core_key is not None:
                yield core_key, (instance[core], PLAIN)
        yield from _walk_members(segments, value)
        for name, subs in _subs(instance).items():
            if name not in CORE_MEMBERS:
                stack.extend(((*segments, name), s) for s in _as_list(subs) if isinstance(s, dict))


def _walk_members(segments: tuple[str, ...], value: Any) -> Iterator[tuple[int, Node]]:
    if not isinstance(value, dict):
        return
    stack: list[tuple[tuple[str, ...], Any]] = [((key,), item) for key, item in value.items()]
    while stack:
        members, item = stack.pop()
        key = path_key(segments, members)
        if key is None:
            continue
        yield key, (item, PLAIN)
        if isinstance(item, dict):
            stack.extend(((*members, k), v) for k, v in item.items())


def entity_types(entity: Entity) -> list[str]:
    return _strings(entity.get("type"))


def entity_scopes(entity: Entity) -> list[str]:
    return _strings(entity.get("scope"))


def _strings(value: Any) -> list[str]:
    return [item for item in _as_list(value) if isinstance(item, str)]
