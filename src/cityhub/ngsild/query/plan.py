"""Lowering of q, type and scope expressions to one small plan over typed leaves.

Both the in-memory evaluator and the SQL compiler run this plan, so they share one meaning:

    Has(key, path, tests)  some node exists at the path and, when tests are given, one of
                           its leaves passes one of the tests
    Not / AllOf / AnyOf    the logical connectives

How each q term lowers (semantics documented in evaluate.py):

    attr            Has(attr)                 !attr         Not(Has(attr))
    attr==v         Has(attr, eq(v))          attr!=v       Has(attr) and Not(Has(attr, eq(v)))
    attr>v          Has(attr, gt(v))          attr~=re      Has(attr, regex(re) on strings)
    attr!~=re       Has(attr, any string) and Not(Has(attr, regex(re)))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from cityhub.ngsild.query.ast import (
    SYSTEM_MEMBERS,
    And,
    Bool,
    Comparable,
    Compare,
    Date,
    DateTime,
    Exists,
    NotExists,
    Number,
    Op,
    Or,
    Path,
    Pattern,
    QExpr,
    Range,
    Scalar,
    ScopeAnd,
    ScopeExpr,
    ScopeOr,
    ScopePattern,
    Text,
    Time,
    TypeAnd,
    TypeExpr,
    TypeOr,
    Uri,
    ValueList,
)
from cityhub.ngsild.query.targets import key_of, text_key
from cityhub.ngsild.query.values import (
    BOOLEAN,
    INSTANT,
    NUMBER,
    OBJECT,
    STRING,
    STRING_INSTANT,
    TIME,
    instant_text,
    time_text,
)

# The keys of the entity's types and scopes (readable keys of nodes are JSON arrays).
TYPE_KEY = text_key("@type")
SCOPE_KEY = text_key("@scope")
# A normalised date-time string is one leaf of kind "c": a string and an instant at once.
_STRINGS = (STRING, STRING_INSTANT)
_INSTANTS = (INSTANT, STRING_INSTANT)

_ORDERING = {Op.GT: "gt", Op.GE: "ge", Op.LT: "lt", Op.LE: "le"}


@dataclass(frozen=True)
class LeafTest:
    """A test on one leaf: its kind is one of `kinds` and its `column` passes `op(args)`.

    ops: "in" (equals one of args), "lt" "le" "gt" "ge", "between" (args low, high,
    inclusive), "regex" (search), "prefix" (equals args[0] or starts with args[0] + "/"),
    "any" (the kind alone)."""

    kinds: tuple[str, ...]
    column: str  # "num" or "txt"
    op: str
    args: tuple[float | str, ...] = ()


@dataclass(frozen=True)
class Has:
    key: int | None  # None: the path can never exist (its key is too long to index)
    path: Path | None  # None for the entity's types and scopes
    tests: tuple[LeafTest, ...] | None = None  # None: existence alone


@dataclass(frozen=True)
class Not:
    item: Plan


@dataclass(frozen=True)
class AllOf:
    items: tuple[Plan, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Plan, ...]


Plan = Has | Not | AllOf | AnyOf


def _ordered(value: Comparable) -> tuple[tuple[str, ...], str, float | str]:
    """Kinds, column and operand of an ordered comparison (strings: never relationships)."""
    if isinstance(value, Number):
        return (NUMBER,), "num", float(value.value)
    if isinstance(value, DateTime | Date):
        return _INSTANTS, "txt", instant_text(value.value)
    if isinstance(value, Time):
        return (TIME,), "txt", time_text(value.value)
    return _STRINGS, "txt", value.value


def _equal(value: Scalar) -> tuple[tuple[str, ...], str, float | str]:
    if isinstance(value, Bool):
        return (BOOLEAN,), "num", 1.0 if value.value else 0.0
    if isinstance(value, Text | Uri):
        return (*_STRINGS, OBJECT), "txt", value.value
    return _ordered(value)


def _equal_tests(value: Scalar | ValueList | Range) -> tuple[LeafTest, ...]:
    if isinstance(value, Range):
        kinds, column, low = _ordered(value.low)
        high = _ordered(value.high)[2]
        return (LeafTest(kinds, column, "between", (low, high)),)
    grouped: dict[tuple[tuple[str, ...], str], list[float | str]] = {}
    for item in value.items if isinstance(value, ValueList) else (value,):
        kinds, column, operand = _equal(item)
        operands = grouped.setdefault((kinds, column), [])
        if operand not in operands:
            operands.append(operand)
    return tuple(LeafTest(kinds, column, "in", tuple(args))
                 for (kinds, column), args in grouped.items())


def _compare(term: Compare) -> Plan:
    key, path, value = key_of(term.path), term.path, term.value
    exists = Has(key, path)
    if isinstance(value, Pattern):
        regex = Has(key, path, (LeafTest(_STRINGS, "txt", "regex", (value.source,)),))
        if term.op is Op.MATCH:
            return regex
        return AllOf((Has(key, path, (LeafTest(_STRINGS, "txt", "any"),)), Not(regex)))
    if term.op in _ORDERING:
        assert isinstance(value, Number | Text | DateTime | Date | Time)
        kinds, column, operand = _ordered(value)
        return Has(key, path, (LeafTest(kinds, column, _ORDERING[term.op], (operand,)),))
    equal = Has(key, path, _equal_tests(value))
    return equal if term.op is Op.EQ else AllOf((exists, Not(equal)))


def unindexed(plan: Has) -> bool:
    """Whether a lookup tests an attribute's createdAt or modifiedAt, which attr_index does
    not hold (SYSTEM_MEMBERS): SQL can only narrow such a term to the entities that have
    the attribute, and the store tests the candidates with the evaluator (`needs_recheck`)."""
    return plan.path is not None and plan.path.core in SYSTEM_MEMBERS


def _has_unindexed(plan: Plan) -> bool:
    if isinstance(plan, Has):
        return unindexed(plan)
    if isinstance(plan, Not):
        return _has_unindexed(plan.item)
    return any(_has_unindexed(item) for item in plan.items)


@lru_cache(maxsize=1024)
def needs_recheck(expr: QExpr) -> bool:
    """Whether the SQL of a q expression selects a superset of its matches (it tests an
    attribute's createdAt or modifiedAt), so that candidates must pass `matches` too."""
    return _has_unindexed(plan_q(expr))


@lru_cache(maxsize=1024)
def plan_q(expr: QExpr) -> Plan:
    if isinstance(expr, And):
        return AllOf(tuple(plan_q(item) for item in expr.items))
    if isinstance(expr, Or):
        return AnyOf(tuple(plan_q(item) for item in expr.items))
    if isinstance(expr, Exists):
        return Has(key_of(expr.path), expr.path)
    if isinstance(expr, NotExists):
        return Not(Has(key_of(expr.path), expr.path))
    return _compare(expr)


@lru_cache(maxsize=1024)
def plan_type(expr: TypeExpr) -> Plan:
    if isinstance(expr, TypeAnd):
        return AllOf(tuple(plan_type(item) for item in expr.items))
    if isinstance(expr, TypeOr):
        return AnyOf(tuple(plan_type(item) for item in expr.items))
    return Has(TYPE_KEY, None, (LeafTest((STRING,), "txt", "in", (expr.name,)),))


def _scope_test(pattern: ScopePattern) -> LeafTest:
    if "+" in pattern.levels:
        body = "/".join("[^/]+" if level == "+" else re.escape(level)
                        for level in pattern.levels)
        tail = "(?:/.*)?" if pattern.descendants else ""
        # \A and \Z mean the same in Python re and PostgreSQL regular expressions.
        return LeafTest((STRING,), "txt", "regex", (rf"\A/{body}{tail}\Z",))
    scope = "/" + "/".join(pattern.levels)
    return LeafTest((STRING,), "txt", "prefix" if pattern.descendants else "in", (scope,))


@lru_cache(maxsize=1024)
def plan_scope(expr: ScopeExpr) -> Plan:
    if isinstance(expr, ScopeAnd):
        return AllOf(tuple(plan_scope(item) for item in expr.items))
    if isinstance(expr, ScopeOr):
        return AnyOf(tuple(plan_scope(item) for item in expr.items))
    if not expr.levels:  # "/#": any scope at all
        return Has(SCOPE_KEY, None)
    return Has(SCOPE_KEY, None, (_scope_test(expr),))
