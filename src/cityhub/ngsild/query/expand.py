"""Expand the terms of a parsed expression to IRIs with the request's @context.

Attribute and sub-attribute names are expanded; core members (observedAt, unitCode, ...)
and compound member names (keys inside JSON values) are kept as sent. Entity type names
are expanded likewise. With `expand_values`, the string and unquoted values compared with
the listed attributes (their names as sent) are expanded too, as the spec's expandValues
parameter asks (e.g. `gender==Male&expandValues=gender` for a VocabProperty).
Scopes are never expanded.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import overload

from cityhub.ngsild.query.ast import (
    CORE_MEMBERS,
    And,
    Compare,
    Exists,
    NotExists,
    Operand,
    Or,
    Path,
    QExpr,
    Scalar,
    Text,
    TypeAnd,
    TypeExpr,
    TypeName,
    TypeOr,
    Uri,
    ValueList,
)

ExpandTerm = Callable[[str], str]


@overload
def expand(expr: QExpr, expand_term: ExpandTerm, *,
           expand_values: Collection[str] = ()) -> QExpr: ...


@overload
def expand(expr: TypeExpr, expand_term: ExpandTerm, *,
           expand_values: Collection[str] = ()) -> TypeExpr: ...


def expand(expr: QExpr | TypeExpr, expand_term: ExpandTerm, *,
           expand_values: Collection[str] = ()) -> QExpr | TypeExpr:
    """The same expression with its terms replaced by `expand_term(term)`."""
    if isinstance(expr, TypeName | TypeAnd | TypeOr):
        return _expand_type(expr, expand_term)
    return _expand_q(expr, expand_term, expand_values)


def _expand_type(expr: TypeExpr, expand_term: ExpandTerm) -> TypeExpr:
    if isinstance(expr, TypeName):
        return TypeName(expand_term(expr.name))
    items = tuple(_expand_type(item, expand_term) for item in expr.items)
    return TypeAnd(items) if isinstance(expr, TypeAnd) else TypeOr(items)


def _expand_path(path: Path, expand_term: ExpandTerm) -> Path:
    sub = tuple(name if name in CORE_MEMBERS else expand_term(name) for name in path.sub)
    return Path(expand_term(path.attr), sub, path.members)


def _expand_scalar(value: Scalar, expand_term: ExpandTerm) -> Scalar:
    if isinstance(value, Text | Uri):
        return Text(expand_term(value.value))
    return value


def _expand_operand(value: Operand, expand_term: ExpandTerm) -> Operand:
    if isinstance(value, ValueList):
        return ValueList(tuple(_expand_scalar(item, expand_term) for item in value.items))
    if isinstance(value, Text | Uri):
        return _expand_scalar(value, expand_term)
    return value


def _expand_q(expr: QExpr, expand_term: ExpandTerm, expand_values: Collection[str]) -> QExpr:
    if isinstance(expr, And | Or):
        items = tuple(_expand_q(item, expand_term, expand_values) for item in expr.items)
        return And(items) if isinstance(expr, And) else Or(items)
    path = _expand_path(expr.path, expand_term)
    if isinstance(expr, Exists):
        return Exists(path)
    if isinstance(expr, NotExists):
        return NotExists(path)
    value = expr.value
    if expr.path.attr in expand_values:
        value = _expand_operand(value, expand_term)
    return Compare(path, expr.op, value)
