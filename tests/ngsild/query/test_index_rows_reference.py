"""`index_rows` and `attribute_rows` (index.py walks instances itself, with cached layouts) give
exactly the rows of the plain definition: every node of `targets.walk` turned into its leaves,
or one "x" row when it has none, then the types and scopes, duplicates dropped."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.ngsild.query import attribute_rows, index_rows
from cityhub.ngsild.query.index import IndexRow
from cityhub.ngsild.query.plan import SCOPE_KEY, TYPE_KEY
from cityhub.ngsild.query.targets import entity_scopes, entity_types, node_leaves, walk
from cityhub.ngsild.query.values import PRESENT, STRING
from tests.ngsild.query.strategies import (
    ATTRS,
    DATETIMES,
    SUBS,
    TIMES,
    entities,
    expand_term,
    json_values,
)


def reference_rows(entity: dict[str, Any]) -> list[IndexRow]:
    rows: dict[IndexRow, None] = {}
    for key, node in walk(entity):
        leaves = node_leaves(node)
        if not leaves:
            rows[(key, PRESENT, None, None)] = None
        for kind, num, txt in leaves:
            rows[(key, kind, num, txt)] = None
    for name in entity_types(entity):
        rows[(TYPE_KEY, STRING, None, name)] = None
    for scope in entity_scopes(entity):
        rows[(SCOPE_KEY, STRING, None, scope)] = None
    return list(rows)


def reference_attribute_rows(entity: dict[str, Any],
                             names: list[str]) -> dict[int, frozenset[IndexRow]]:
    part = {name: entity["attrs"][name] for name in names if name in entity["attrs"]}
    keyed: dict[int, set[IndexRow]] = {}
    for row in reference_rows({"attrs": part}):
        keyed.setdefault(row[0], set()).add(row)
    return {key: frozenset(rows) for key, rows in keyed.items()}


# Beyond the shared pools: odd scalars, untyped and unknown-typed instances, an attribute given
# as one instance rather than a list, sub-attributes named like core members, nested subs.
_odd_scalars = st.sampled_from([
    float("nan"), float("inf"), 10**400, 2**53, -(2**53), 2**60, -0.0, 7, "12", "2026-13-01", "",
    "0", True, None, *DATETIMES, *TIMES,
])
_values = st.one_of(json_values, _odd_scalars, st.lists(_odd_scalars, max_size=3),
                    st.dictionaries(st.sampled_from(["a", "type", "coordinates"]), json_values,
                                    max_size=3))
_types = st.sampled_from(["Property", "Relationship", "GeoProperty", "LanguageProperty",
                          "ListRelationship", "JsonProperty", "Unknown", None])
_sub_names = st.sampled_from([*(expand_term(s) for s in SUBS), "observedAt", "unitCode"])


_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "type": _types, "value": _values, "object": _values,
    "objectList": st.lists(st.one_of(st.fixed_dictionaries({"object": _values}), _odd_scalars),
                           max_size=2),
    "languageMap": st.one_of(_values, st.dictionaries(st.sampled_from(["en", "fr"]), _values,
                                                      max_size=2)),
    "json": _values, "observedAt": _values, "unitCode": _values, "datasetId": _values,
    "createdAt": _values, "modifiedAt": _values,
}


@st.composite
def _instance(draw: st.DrawFn, depth: int) -> dict[str, Any]:
    """One attribute instance with any subset of the members (of any JSON value)."""
    body = {name: draw(values) for name, values in _OPTIONAL.items() if draw(st.booleans())}
    if depth and draw(st.booleans()):
        body["sub"] = draw(st.dictionaries(_sub_names, _attribute(depth - 1), max_size=2))
    return body


def _attribute(depth: int) -> st.SearchStrategy[Any]:
    """An attribute: one instance, or a list of them (multi-instance)."""
    return st.one_of(_instance(depth), st.lists(_instance(depth), max_size=2))


odd_entities = st.fixed_dictionaries({
    "id": st.just("urn:ngsi-ld:E:odd"),
    "type": st.lists(st.sampled_from([expand_term("T1"), expand_term("T2")]), max_size=2),
    "attrs": st.dictionaries(st.sampled_from([expand_term(a) for a in ATTRS]), _attribute(2),
                             max_size=2),
}, optional={"scope": st.lists(st.sampled_from(["/A", "/B"]), max_size=2)})

any_entities = st.one_of(st.integers(0, 9).flatmap(entities), odd_entities)
_names = st.lists(st.sampled_from([expand_term(a) for a in ATTRS]), unique=True, max_size=3)


@settings(max_examples=400, deadline=None)
@given(any_entities)
def test_index_rows_are_the_rows_of_every_walked_node_in_order(entity: dict[str, Any]) -> None:
    expected = reference_rows(entity)
    assert index_rows(entity) == expected
    assert index_rows(entity) == expected  # again, from the cached layouts


@settings(max_examples=200, deadline=None)
@given(any_entities, _names)
def test_attribute_rows_are_the_rows_of_the_named_attributes_by_key(
        entity: dict[str, Any], names: list[str]) -> None:
    assert attribute_rows(entity, names) == reference_attribute_rows(entity, names)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 9).flatmap(entities), min_size=2, max_size=6))
def test_entities_of_one_shape_keep_their_own_values(batch: list[dict[str, Any]]) -> None:
    """Layouts are shared between entities of one shape; the values must not be."""
    rows = [index_rows(entity) for entity in batch]
    assert rows == [reference_rows(entity) for entity in batch]
