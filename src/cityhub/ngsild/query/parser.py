"""Parse q, entity-type and scopeQ text into expressions (results cached per text).

Every bad input raises BadRequestData naming the character position (1-based) and what was
expected there; no lark exception escapes. Text is limited to MAX_TEXT characters and
parentheses to MAX_DEPTH levels, so evaluation and SQL compilation never recurse deeply.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any, TypeVar

from lark import Lark, Token, Transformer
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
)
from lark.lexer import PatternStr

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query.ast import (
    And,
    Bool,
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
    TypeName,
    TypeOr,
    Uri,
    ValueList,
)
from cityhub.ngsild.query.grammar import Q_GRAMMAR, SCOPE_GRAMMAR, TERMINAL_NAMES, TYPE_GRAMMAR
from cityhub.ngsild.query.values import parse_date, parse_datetime, parse_time

MAX_TEXT = 8192
MAX_DEPTH = 32

T = TypeVar("T")


class _Located(Exception):
    """A semantic error found while building the tree, with its character offset."""

    def __init__(self, position: int | None, reason: str) -> None:
        super().__init__(reason)
        self.position = position
        self.reason = reason


def _build(token: Token | None, make: Callable[[], T]) -> T:
    """Run an AST constructor, attaching the token's position to its error."""
    try:
        return make()
    except BadRequestData as error:
        raise _Located(token.start_pos if token is not None else None, error.detail) from None


def _json_string(token: Token) -> str:
    try:
        text = json.loads(str(token), strict=False)
    except ValueError:
        raise _Located(token.start_pos, f"invalid string {token}") from None
    assert isinstance(text, str)
    return text


class _QBuilder(Transformer[Token, Any]):
    def or_expr(self, items: list[QExpr]) -> Or:
        return Or(tuple(items))

    def and_expr(self, items: list[QExpr]) -> And:
        return And(tuple(items))

    def exists(self, items: list[Path]) -> Exists:
        return Exists(items[0])

    def not_exists(self, items: list[Path]) -> NotExists:
        return NotExists(items[0])

    def compare(self, items: list[Any]) -> Compare:
        path, op, value = items
        return _build(op, lambda: Compare(path, Op(str(op)), value))

    def path(self, items: list[Any]) -> Path:
        names = [str(item) for item in items if isinstance(item, Token)]
        members = next((item for item in items if isinstance(item, tuple)), ())
        return _build(items[0], lambda: Path(names[0], tuple(names[1:]), members))

    def members(self, items: list[Token]) -> tuple[str, ...]:
        return tuple(str(item) for item in items)

    def single(self, items: list[Scalar]) -> Scalar:
        return items[0]

    def value_list(self, items: list[Scalar]) -> ValueList:
        return ValueList(tuple(items))

    def value_range(self, items: list[Any]) -> Range:
        low, high = items
        return _build(None, lambda: Range(low, high))

    def number(self, items: list[Token]) -> Number:
        text = str(items[0])
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return _build(items[0], lambda: Number(value))

    def string(self, items: list[Token]) -> Text:
        return Text(_json_string(items[0]))

    def datetime(self, items: list[Token]) -> DateTime:
        moment = parse_datetime(str(items[0]))
        if moment is None:
            raise _Located(items[0].start_pos, f"invalid date-time {items[0]}")
        return DateTime(moment)

    def date(self, items: list[Token]) -> Date:
        day = parse_date(str(items[0]))
        if day is None:
            raise _Located(items[0].start_pos, f"invalid date {items[0]}")
        return Date(day)

    def time(self, items: list[Token]) -> Time:
        clock = parse_time(str(items[0]))
        if clock is None:
            raise _Located(items[0].start_pos, f"invalid time {items[0]}")
        return Time(clock)

    def true(self, items: list[Token]) -> Bool:
        return Bool(True)

    def false(self, items: list[Token]) -> Bool:
        return Bool(False)

    def uri(self, items: list[Token]) -> Uri:
        return _build(items[0], lambda: Uri(str(items[0])))

    def pattern(self, items: list[Token]) -> Pattern:
        token = items[0]
        source = _json_string(token) if token.type == "STRING" else str(token)
        return _build(token, lambda: Pattern(source))


class _TypeBuilder(Transformer[Token, Any]):
    def t_or(self, items: list[TypeExpr]) -> TypeOr:
        return TypeOr(tuple(items))

    def t_and(self, items: list[TypeExpr]) -> TypeAnd:
        return TypeAnd(tuple(items))

    def type_name(self, items: list[Token]) -> TypeName:
        return _build(items[0], lambda: TypeName(str(items[0])))


class _ScopeBuilder(Transformer[Token, Any]):
    def s_or(self, items: list[ScopeExpr]) -> ScopeOr:
        return ScopeOr(tuple(items))

    def s_and(self, items: list[ScopeExpr]) -> ScopeAnd:
        return ScopeAnd(tuple(items))

    def scope(self, items: list[Token]) -> ScopePattern:
        token = items[0]
        levels = str(token)[1:].split("/")
        descendants = levels[-1] == "#"
        if descendants:
            levels.pop()
        if levels == [""] and descendants:
            levels = []
        if "" in levels:
            raise _Located(token.start_pos, f"empty scope level in {token}")
        return _build(token, lambda: ScopePattern(tuple(levels), descendants))


@cache
def _parser(language: str) -> Lark:
    grammar, builder = {
        "q": (Q_GRAMMAR, _QBuilder()),
        "type": (TYPE_GRAMMAR, _TypeBuilder()),
        "scopeQ": (SCOPE_GRAMMAR, _ScopeBuilder()),
    }[language]
    return Lark(grammar, parser="lalr", lexer="contextual", transformer=builder)


def _describe(parser: Lark, names: set[str]) -> str:
    readable = set()
    for name in names:
        if name in TERMINAL_NAMES:
            readable.add(TERMINAL_NAMES[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            readable.add(name.lower())
            continue
        readable.add(f"'{pattern.value}'" if isinstance(pattern, PatternStr) else name.lower())
    return ", ".join(sorted(readable)) or "nothing more"


def _error(language: str, text: str, position: int | None, reason: str) -> BadRequestData:
    shown = text if len(text) <= 120 else text[:117] + "..."
    where = f" at character {position + 1}" if position is not None else ""
    return BadRequestData(f"Invalid {language} {shown!r}{where}: {reason}")


def _syntax_error(language: str, text: str, error: UnexpectedInput) -> BadRequestData:
    parser = _parser(language)
    if isinstance(error, UnexpectedCharacters):
        position = error.pos_in_stream or 0
        found, expected = repr(text[position]), set(error.allowed or ())
        if text[position] == '"':
            return _error(language, text, position, "unterminated string")
    elif isinstance(error, UnexpectedToken) and error.token.type != "$END":
        position = error.token.start_pos or 0
        found, expected = repr(str(error.token)), set(error.expected)
    else:
        position = len(text)
        found = "the end"
        expected = set(getattr(error, "expected", ()) or ())
    if text[position:position + 1] == "{":
        return _error(language, text, position, "linked-entity paths attr{...} are not supported")
    return _error(language, text, position,
                  f"unexpected {found}; expected {_describe(parser, expected)}")


def _depth(expr: object) -> int:
    """Nesting depth of a logical tree, computed without recursion."""
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        items = getattr(node, "items", None)
        if isinstance(items, tuple):
            stack.extend((item, depth + 1) for item in items)
    return deepest


def _parse(language: str, text: str) -> Any:
    if not text.strip():
        raise _error(language, text, None, "it is empty")
    if len(text) > MAX_TEXT:
        raise _error(language, text, None, f"longer than {MAX_TEXT} characters")
    try:
        result = _parser(language).parse(text)
    except UnexpectedInput as error:
        raise _syntax_error(language, text, error) from None
    except _Located as error:  # raised by the builders, which lark runs while parsing
        raise _error(language, text, error.position, error.reason) from None
    if _depth(result) > MAX_DEPTH:
        raise _error(language, text, None, f"nested deeper than {MAX_DEPTH} levels")
    return result


@lru_cache(maxsize=1024)
def parse_q(text: str) -> QExpr:
    """Parse an NGSI-LD q expression (clause 4.9), names left as the request's terms."""
    expr: QExpr = _parse("q", text)
    return expr


@lru_cache(maxsize=1024)
def parse_type_expr(text: str) -> TypeExpr:
    """Parse an entity type selection (clause 4.17): `A,B`, `A|B`, `(A;B)|C`."""
    expr: TypeExpr = _parse("type", text)
    return expr


@lru_cache(maxsize=1024)
def parse_scope_q(text: str) -> ScopeExpr:
    """Parse a scopeQ (clause 4.19): `/a/b`, `/a/#`, `/a/+/c`, `/#`, with `;`, `|` and `,`."""
    expr: ScopeExpr = _parse("scopeQ", text)
    return expr
