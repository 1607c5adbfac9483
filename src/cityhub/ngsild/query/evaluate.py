"""Match q, entity-type and scopeQ expressions against one entity in memory.

Used on every write and notification, so each expression is compiled once (cached) into a
closure tree; an entity is only walked along the paths the expression names.

Semantics (the SQL compiler in sql.py implements the same plan, see plan.py):

- A path addresses nodes (targets.py): for every instance of the attribute (all datasetIds),
  its target value, a core member (`attr.observedAt`, `.unitCode`, `.datasetId`,
  `.createdAt`, `.modifiedAt`), a sub-attribute's target (`attr.sub`) or a compound member
  (`attr[a.b]`, `attr.sub[a]`). The target value of a Property is `value`, of a Relationship
  its `object`, of a LanguageProperty every string in its languageMap (`attr[en]` picks one
  language), of a ListProperty its valueList, of a ListRelationship its objects.
- The leaves of a node are its scalar value, or each scalar element of an array value
  (one level). Kinds come from values.py: numbers, booleans, strings, relationship objects,
  instants and times. Values of different kinds never compare (no coercion: `a==1` does not
  match "1"); an unquoted date or date-time matches a string leaf that is a date or
  date-time, compared as UTC instants (a date is its midnight UTC); strings compare by code
  point.
- `attr` holds iff a node exists; `!attr` iff none does.
- `attr==v` holds iff some leaf equals v (a value list: any of them; a range low..high:
  low <= leaf <= high). `attr!=v` holds iff the attribute exists and `attr==v` does not,
  over all instances and array elements together (a value [1, 2] does not match `a!=1`).
- `> >= < <=` hold iff some leaf of the value's kind compares true.
- Relationship objects match only `==` and `!=` (clause 4.9), with a string or unquoted URI.
- `attr~=re` holds iff some string leaf contains a match of re (Python `re.search`, with
  `.` matching newlines); `attr!~=re` iff the node has a string leaf and none matches.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from cityhub.ngsild.model import Entity
from cityhub.ngsild.query.ast import QExpr, ScopeExpr, TypeExpr
from cityhub.ngsild.query.plan import (
    TYPE_KEY,
    AllOf,
    AnyOf,
    Has,
    LeafTest,
    Not,
    Plan,
    plan_q,
    plan_scope,
    plan_type,
)
from cityhub.ngsild.query.targets import entity_scopes, entity_types, node_leaves, nodes
from cityhub.ngsild.query.values import STRING, compiled_pattern

Predicate = Callable[[Entity], bool]
# Takes a Leaf; typed Any because the test picks num or txt by index after the kind check.
LeafPredicate = Callable[[Any], bool]


def matches(expr: QExpr, entity: Entity) -> bool:
    """Whether an entity (internal form, expanded names) satisfies an expanded q."""
    return _q_predicate(expr)(entity)


def type_matches(expr: TypeExpr, entity: Entity) -> bool:
    """Whether an entity has the types an expanded type expression asks for."""
    return _type_predicate(expr)(entity)


def scope_matches(expr: ScopeExpr, entity: Entity) -> bool:
    """Whether one of an entity's scopes satisfies a scopeQ."""
    return _scope_predicate(expr)(entity)


@lru_cache(maxsize=1024)
def _q_predicate(expr: QExpr) -> Predicate:
    return _predicate(plan_q(expr))


@lru_cache(maxsize=1024)
def _type_predicate(expr: TypeExpr) -> Predicate:
    return _predicate(plan_type(expr))


@lru_cache(maxsize=1024)
def _scope_predicate(expr: ScopeExpr) -> Predicate:
    return _predicate(plan_scope(expr))


def _predicate(plan: Plan) -> Predicate:
    if isinstance(plan, Has):
        return _has(plan)
    if isinstance(plan, Not):
        inner = _predicate(plan.item)
        return lambda entity: not inner(entity)
    parts = [_predicate(item) for item in plan.items]
    if isinstance(plan, AllOf):
        return lambda entity: all(part(entity) for part in parts)
    assert isinstance(plan, AnyOf)
    return lambda entity: any(part(entity) for part in parts)


def _leaf_test(test: LeafTest) -> LeafPredicate:
    kinds = frozenset(test.kinds)
    index = 1 if test.column == "num" else 2
    args: tuple[Any, ...] = test.args
    op = test.op
    if op == "any":
        return lambda leaf: leaf[0] in kinds
    if op == "in":
        values = frozenset(args)
        return lambda leaf: leaf[0] in kinds and leaf[index] in values
    if op == "regex":
        search = compiled_pattern(args[0]).search
        return lambda leaf: leaf[0] in kinds and search(leaf[index]) is not None
    if op == "prefix":
        scope, below = args[0], args[0] + "/"
        return lambda leaf: leaf[0] in kinds and (leaf[2] == scope or leaf[2].startswith(below))
    if op == "between":
        low, high = args
        return lambda leaf: leaf[0] in kinds and low <= leaf[index] <= high
    operand = args[0]
    compare: dict[str, LeafPredicate] = {
        "lt": lambda leaf: leaf[0] in kinds and leaf[index] < operand,
        "le": lambda leaf: leaf[0] in kinds and leaf[index] <= operand,
        "gt": lambda leaf: leaf[0] in kinds and leaf[index] > operand,
        "ge": lambda leaf: leaf[0] in kinds and leaf[index] >= operand,
    }
    return compare[op]


def _has(plan: Has) -> Predicate:
    if plan.key is None:
        return lambda entity: False
    tests = None if plan.tests is None else [_leaf_test(test) for test in plan.tests]
    path = plan.path
    if path is None:
        names = entity_types if plan.key == TYPE_KEY else entity_scopes

        def named(entity: Entity) -> bool:
            leaves = [(STRING, None, name) for name in names(entity)]
            if tests is None:
                return bool(leaves)
            return any(test(leaf) for leaf in leaves for test in tests)

        return named

    if tests is None:
        return lambda entity: bool(nodes(entity, path))

    def has(entity: Entity) -> bool:
        for node in nodes(entity, path):
            for leaf in node_leaves(node):
                if any(test(leaf) for test in tests):
                    return True
        return False

    return has
