"""Compile q, entity-type and scopeQ expressions to SQL conditions over `attr_index`.

Each `compile_*` returns `(sql, params)`: a boolean expression on the entity row `alias`
that references only `{alias}.eid` and `{alias}.tenant`, built from terms of the shape

    {alias}.eid IN (SELECT eid FROM attr_index
                    WHERE tenant = ? AND path = ? AND (kind = 'n' AND num > ?))

so SQLite and PostgreSQL answer each term from the (tenant, path, kind, num, txt) index
(index.py); a test on txt also says `num IS NULL` (true of every text leaf), which lets
that index reach txt. `path` is the integer key of the path (targets.path_key).
Pass `tenant=`: the subqueries are then uncorrelated, computed once and joined on eid
(PostgreSQL plans a semi-join; on 20 000 entities `a>995` took 0.1 ms). Without it they
correlate on `{alias}.tenant`, which PostgreSQL runs as one subplan per entity row (80 ms
for the same query). Either way a term only sees rows of the entity's own eid, so tenants
cannot leak into each other.

An attribute's createdAt and modifiedAt are not indexed (plan.unindexed): a q testing them
compiles to a superset of its matches, and `needs_recheck(expr)` says so; the caller tests
the candidates with `matches`.

Placeholders are positional `?` (the PostgreSQL adapter rewrites them to `%s`); the SQL
text never contains a literal `?` or `%` and every user value is a parameter.

Regular expressions: PostgreSQL runs `txt ~ pattern` (its POSIX ARE engine); SQLite runs
`txt REGEXP pattern`, which calls `sqlite_regexp(pattern, txt)` (Python `re`, as the
evaluator). Both search (unanchored) and let `.` match a newline. They differ on newlines
before `$` (Python also matches before a final newline), on `\\d`/`\\w` outside ASCII,
POSIX classes `[[:alpha:]]` (PostgreSQL only), `(?P<name>...)` (Python only) and
back-reference details; patterns built of literals, `. * + ? ^ $ | ( ) [a-z]` mean the same.
"""

from __future__ import annotations

import re

from cityhub.ngsild.query.ast import Path, QExpr, ScopeExpr, TypeExpr
from cityhub.ngsild.query.index import TXT_PREFIX, Dialect
from cityhub.ngsild.query.plan import (
    AllOf,
    AnyOf,
    Has,
    LeafTest,
    Not,
    Plan,
    plan_q,
    plan_scope,
    plan_type,
    unindexed,
)
from cityhub.ngsild.query.targets import key_of
from cityhub.ngsild.query.values import compiled_pattern

_SYMBOL = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}
# Comparing left(txt, N) first lets PostgreSQL use its left(txt, N) index: for code point
# order, txt > v implies left(txt, N) >= left(v, N), and txt < v implies <=.
_PREFIX_BOUND = {"lt": "<=", "le": "<=", "gt": ">=", "ge": ">="}


def sqlite_regexp(pattern: str, value: object) -> bool:
    """SQLite's REGEXP function: `value REGEXP pattern` calls regexp(pattern, value).

    Register with conn.create_function("regexp", 2, sqlite_regexp, deterministic=True)."""
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    try:
        return compiled_pattern(pattern).search(value) is not None
    except re.error:
        return False


def compile_q(expr: QExpr, dialect: Dialect, alias: str = "e", *,
              tenant: str | None = None) -> tuple[str, list[object]]:
    """SQL for an expanded q expression (see the module docstring)."""
    return _Compiler(dialect, alias, tenant).plan(plan_q(expr))


def compile_type(expr: TypeExpr, dialect: Dialect, alias: str = "e", *,
                 tenant: str | None = None) -> tuple[str, list[object]]:
    """SQL for an expanded entity type expression."""
    return _Compiler(dialect, alias, tenant).plan(plan_type(expr))


def compile_scope(expr: ScopeExpr, dialect: Dialect, alias: str = "e", *,
                  tenant: str | None = None) -> tuple[str, list[object]]:
    """SQL for a scopeQ expression."""
    return _Compiler(dialect, alias, tenant).plan(plan_scope(expr))


class _Compiler:
    def __init__(self, dialect: Dialect, alias: str, tenant: str | None) -> None:
        if dialect not in ("sqlite", "postgres"):
            raise ValueError(f"unknown SQL dialect {dialect!r}")
        if not alias.isidentifier():
            raise ValueError(f"not an SQL alias: {alias!r}")
        self.postgres = dialect == "postgres"
        self.alias = alias
        self.tenant = tenant

    def plan(self, plan: Plan) -> tuple[str, list[object]]:
        params: list[object] = []
        return self._plan(plan, params, True), params

    def _plan(self, plan: Plan, params: list[object], positive: bool) -> str:
        """SQL of a plan; `positive` is false under an odd number of NOTs (see `_has`)."""
        if isinstance(plan, Has):
            return self._has(plan, params, positive)
        if isinstance(plan, Not):
            return f"NOT ({self._plan(plan.item, params, not positive)})"
        assert isinstance(plan, AllOf | AnyOf)
        if isinstance(plan, AllOf):
            return self._all_of(plan, params, positive)
        return "(" + " OR ".join(self._plan(item, params, positive)
                                 for item in plan.items) + ")"

    def _all_of(self, plan: AllOf, params: list[object], positive: bool) -> str:
        """AND. Two or more positive index lookups are nested into one intersection inside the
        index, so only entity rows that pass all of them are read (not every row the first
        lookup finds: with large documents that was most of a selective query's time)."""
        lookups = [item for item in plan.items
                   if isinstance(item, Has) and item.key is not None and not unindexed(item)]
        if len(lookups) < 2:
            return "(" + " AND ".join(self._plan(item, params, positive)
                                      for item in plan.items) + ")"
        wheres = [self._has_where(lookup, params) for lookup in lookups]
        nested = f"SELECT eid FROM attr_index WHERE {wheres[-1]}"
        for where in reversed(wheres[:-1]):
            nested = f"SELECT eid FROM attr_index WHERE {where} AND eid IN ({nested})"
        parts = [f"{self.alias}.eid IN ({nested})"]
        parts += [self._plan(item, params, positive)
                  for item in plan.items if item not in lookups]
        return "(" + " AND ".join(parts) + ")"

    def _has(self, plan: Has, params: list[object], positive: bool) -> str:
        if plan.key is None:
            return "1 = 0"
        if unindexed(plan):
            # Not in the index: widen to "the attribute instance exists" where the term
            # counts positively, and to false under NOT, so the whole expression selects a
            # superset of its matches (the store re-tests candidates: needs_recheck).
            assert plan.path is not None
            if not positive:
                return "1 = 0"
            plan = Has(key_of(Path(plan.path.attr, plan.path.sub[:-1])), None)
            if plan.key is None:
                return "1 = 0"
        where = self._has_where(plan, params)
        return f"{self.alias}.eid IN (SELECT eid FROM attr_index WHERE {where})"

    def _has_where(self, plan: Has, params: list[object]) -> str:
        """The WHERE of one index lookup (tenant, path and the leaf tests)."""
        if self.tenant is None:
            where = f"tenant = {self.alias}.tenant"
        else:
            where = "tenant = ?"
            params.append(self.tenant)
        where += " AND path = ?"
        params.append(plan.key)
        if plan.tests is not None:
            where += " AND (" + " OR ".join(self._test(t, params) for t in plan.tests) + ")"
        return where

    def _test(self, test: LeafTest, params: list[object]) -> str:
        kinds = test.kinds
        parts = [f"kind = '{kinds[0]}'" if len(kinds) == 1
                 else "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"]
        column, op, args = test.column, test.op, list(test.args)
        if column == "txt":  # always true for text kinds; it lets the index reach txt
            parts.append("num IS NULL")
        bounded = self.postgres and column == "txt"
        left = f"left(txt, {TXT_PREFIX})"
        arg_left = f"left(?, {TXT_PREFIX})"
        if op == "in":
            marks = ", ".join("?" for _ in args)
            if bounded:
                parts.append(f"{left} = {arg_left}" if len(args) == 1
                             else f"{left} IN ({', '.join(arg_left for _ in args)})")
                params.extend(args)
            parts.append(f"{column} = ?" if len(args) == 1 else f"{column} IN ({marks})")
            params.extend(args)
        elif op in _SYMBOL:
            if bounded:
                parts.append(f"{left} {_PREFIX_BOUND[op]} {arg_left}")
                params.append(args[0])
            parts.append(f"{column} {_SYMBOL[op]} ?")
            params.append(args[0])
        elif op == "between":
            if bounded:
                parts.append(f"{left} >= {arg_left} AND {left} <= {arg_left}")
                params.extend(args)
            parts.append(f"{column} >= ? AND {column} <= ?")
            params.extend(args)
        elif op == "regex":
            parts.append("txt ~ ?" if self.postgres else "txt REGEXP ?")
            params.append(args[0])
        elif op == "prefix":
            parts.append(self._prefix(str(args[0]), params))
        elif op != "any":
            raise ValueError(f"unknown leaf test {op!r}")
        return "(" + " AND ".join(parts) + ")"

    def _prefix(self, scope: str, params: list[object]) -> str:
        """txt is scope or below it: code point order puts every "scope/..." in
        [scope + "/", scope + "0"), since "0" follows "/"."""
        below, above = scope + "/", scope + "0"
        if not self.postgres:
            params.extend((scope, below, above))
            return "(txt = ? OR (txt >= ? AND txt < ?))"
        left, arg_left = f"left(txt, {TXT_PREFIX})", f"left(?, {TXT_PREFIX})"
        params.extend((scope, scope, below, above, below, above))
        return (f"(({left} = {arg_left} AND txt = ?) OR ({left} >= {arg_left} "
                f"AND {left} <= {arg_left} AND txt >= ? AND txt < ?))")
