"""The q, entity-type and scopeQ expressions as frozen dataclasses, and their text form.

`str(expr)` prints text that parses back to an equal expression, as long as the names are
still the terms of the request (after `expand` they are IRIs, printed as they are, for logs).
The printer writes the fewest parentheses that keep the tree: `;` (AND) binds tighter than
`|` (OR), as the spec requires, and a nested group of the same operator keeps its parentheses.
Constructors check their invariants, so an expression that exists can always be printed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query.values import compiled_pattern, instant_text, time_text

# Members of an attribute instance that a dotted path may end with (not expanded).
CORE_MEMBERS = frozenset({"observedAt", "createdAt", "modifiedAt", "unitCode", "datasetId"})
# The system timestamps the hub stamps on every attribute instance: not in attr_index (each
# would cost two index rows per attribute on every write); see plan.unindexed.
SYSTEM_MEMBERS = frozenset({"createdAt", "modifiedAt"})

NAME_PATTERN = r"[^\W\d][\w:]*"
MEMBER_PATTERN = r"[\w$@:\-]+"
URI_PATTERN = r"[^\W\d_][^\s;|(),\"]*"
TYPE_PATTERN = r"[^\s;|(),]+"
SCOPE_LEVEL_PATTERN = r"[\w\-]+"

_URI_RE = re.compile(URI_PATTERN)
_TYPE_RE = re.compile(TYPE_PATTERN)
_LEVEL_RE = re.compile(SCOPE_LEVEL_PATTERN)


def _invalid(message: str) -> BadRequestData:
    return BadRequestData(message)


class Op(StrEnum):
    EQ = "=="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    MATCH = "~="
    NO_MATCH = "!~="


ORDERING = frozenset({Op.GT, Op.GE, Op.LT, Op.LE})
PATTERN_OPS = frozenset({Op.MATCH, Op.NO_MATCH})


# ---- values ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Number:
    value: int | float

    def __post_init__(self) -> None:
        try:
            finite = not isinstance(self.value, bool) and math.isfinite(float(self.value))
        except OverflowError:
            finite = False
        if not finite:
            raise _invalid(f"not a finite number: {self.value!r}")

    def __str__(self) -> str:
        return str(self.value) if isinstance(self.value, int) else repr(float(self.value))


@dataclass(frozen=True)
class Text:
    """A quoted string."""

    value: str

    def __str__(self) -> str:
        return json.dumps(self.value, ensure_ascii=False)


@dataclass(frozen=True)
class Bool:
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(frozen=True)
class DateTime:
    """An instant; the parser gives it in UTC and it prints in UTC."""

    value: datetime

    def __post_init__(self) -> None:
        if self.value.tzinfo is None:
            raise _invalid("a DateTime value needs a time zone")

    def __str__(self) -> str:
        text = instant_text(self.value)
        return text.replace(".000000Z", "Z")


@dataclass(frozen=True)
class Date:
    value: date

    def __post_init__(self) -> None:
        if isinstance(self.value, datetime):
            raise _invalid("a Date value holds a date, not a datetime")

    def __str__(self) -> str:
        return instant_text(self.value)[:10]


@dataclass(frozen=True)
class Time:
    """A time of day meaning UTC (naive)."""

    value: time

    def __post_init__(self) -> None:
        if self.value.tzinfo is not None:
            raise _invalid("a Time value is naive and means UTC")

    def __str__(self) -> str:
        return time_text(self.value).replace(".000000", "") + "Z"


@dataclass(frozen=True)
class Uri:
    """An unquoted URI or term (e.g. a Relationship object); it compares like a string."""

    value: str

    def __post_init__(self) -> None:
        if self.value == "null":
            raise _invalid("null is not a q value (an attribute never holds null)")
        if _URI_RE.fullmatch(self.value) is None or self.value in ("true", "false"):
            raise _invalid(f"not an unquoted URI: {self.value!r}")

    def __str__(self) -> str:
        return self.value


Comparable = Number | Text | DateTime | Date | Time
Scalar = Number | Text | Bool | DateTime | Date | Time | Uri


def _value_class(value: Comparable) -> str:
    """Which values a range may join: dates and date-times are both instants."""
    return "instant" if isinstance(value, DateTime | Date) else type(value).__name__


@dataclass(frozen=True)
class ValueList:
    """`a==1,2,3`: any of the values (with `!=`: none of them)."""

    items: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        if len(self.items) < 2:
            raise _invalid("a value list needs at least two values")

    def __str__(self) -> str:
        return ",".join(str(item) for item in self.items)


@dataclass(frozen=True)
class Range:
    """`a==low..high`, both ends included."""

    low: Comparable
    high: Comparable

    def __post_init__(self) -> None:
        if _value_class(self.low) != _value_class(self.high):
            raise _invalid(f"the ends of the range {self} are of different types")

    def __str__(self) -> str:
        return f"{self.low}..{self.high}"


@dataclass(frozen=True)
class Pattern:
    """A regular expression for `~=` and `!~=`, always printed quoted."""

    source: str

    def __post_init__(self) -> None:
        try:
            compiled_pattern(self.source)
        except re.error as error:
            raise _invalid(f"invalid regular expression {self.source!r}: {error}") from None

    def __str__(self) -> str:
        return json.dumps(self.source, ensure_ascii=False)


Operand = Scalar | ValueList | Range | Pattern


# ---- q ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Path:
    """`attr.sub.sub[member.member]`; `sub` may end with a core member such as observedAt."""

    attr: str
    sub: tuple[str, ...] = ()
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in self.sub[:-1]:
            if name in CORE_MEMBERS:
                raise _invalid(f"{name} must be the last name of an attribute path")
        if self.core is not None and self.members:
            raise _invalid(f"{self.core} holds no compound members")

    @property
    def core(self) -> str | None:
        """The core member the path ends with (observedAt, unitCode, ...), if any."""
        return self.sub[-1] if self.sub and self.sub[-1] in CORE_MEMBERS else None

    def __str__(self) -> str:
        text = ".".join((self.attr, *self.sub))
        return f"{text}[{'.'.join(self.members)}]" if self.members else text


@dataclass(frozen=True)
class Exists:
    path: Path

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class NotExists:
    path: Path

    def __str__(self) -> str:
        return f"!{self.path}"


@dataclass(frozen=True)
class Compare:
    path: Path
    op: Op
    value: Operand

    def __post_init__(self) -> None:
        value = self.value
        if self.op in PATTERN_OPS:
            ok = isinstance(value, Pattern)
        elif self.op in ORDERING:
            ok = isinstance(value, Number | Text | DateTime | Date | Time)
        else:
            ok = not isinstance(value, Pattern)
        if not ok:
            raise _invalid(f"operator {self.op} cannot take the value {value}")

    def __str__(self) -> str:
        return f"{self.path}{self.op}{self.value}"


@dataclass(frozen=True)
class And:
    items: tuple[QExpr, ...]

    def __post_init__(self) -> None:
        _check_arity(self.items)

    def __str__(self) -> str:
        return ";".join(_group(item, (And, Or)) for item in self.items)


@dataclass(frozen=True)
class Or:
    items: tuple[QExpr, ...]

    def __post_init__(self) -> None:
        _check_arity(self.items)

    def __str__(self) -> str:
        return "|".join(_group(item, (Or,)) for item in self.items)


QExpr = Exists | NotExists | Compare | And | Or


# ---- entity types -----------------------------------------------------------------------

@dataclass(frozen=True)
class TypeName:
    name: str

    def __post_init__(self) -> None:
        if _TYPE_RE.fullmatch(self.name) is None:
            raise _invalid(f"not an entity type name: {self.name!r}")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class TypeAnd:
    items: tuple[TypeExpr, ...]

    def __post_init__(self) -> None:
        _check_arity(self.items)

    def __str__(self) -> str:
        return ";".join(_group(item, (TypeAnd, TypeOr)) for item in self.items)


@dataclass(frozen=True)
class TypeOr:
    items: tuple[TypeExpr, ...]

    def __post_init__(self) -> None:
        _check_arity(self.items)

    def __str__(self) -> str:
        return "|".join(_group(item, (TypeOr,)) for item in self.items)


TypeExpr = TypeName | TypeAnd | TypeOr


# ---- scopes -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScopePattern:
    """`/a/+/c` (`+` is any one level); `descendants` adds `/#` (the scope and all below).
    No levels with `descendants` is `/#`: any scope at all."""

    levels: tuple[str, ...]
    descendants: bool = False

    def __post_init__(self) -> None:
        if not self.levels and not self.descendants:
            raise _invalid("a scope needs at least one level")
        for level in self.levels:
            if level != "+" and _LEVEL_RE.fullmatch(level) is None:
                raise _invalid(f"invalid scope level {level!r}")

    def __str__(self) -> str:
        parts = [*self.levels, "#"] if self.descendants else list(self.levels)
        return "/" + "/".join(parts)


@dataclass(frozen=True)
class ScopeAnd:
    items: tuple[ScopeExpr, ...]

    def __post_init__(self) -> None:
        _check_arity(self.items)

    def __str__(self) -> str:
        return ";".join(_group(item, (ScopeAnd, ScopeOr)) for item in self.items)


@dataclass(frozen=True)
class ScopeOr:
    items: tuple[ScopeExpr, ...]

    def __post_init__(self) -> None:
        _check_arity(self.items)

    def __str__(self) -> str:
        return "|".join(_group(item, (ScopeOr,)) for item in self.items)


ScopeExpr = ScopePattern | ScopeAnd | ScopeOr


def _check_arity(items: tuple[object, ...]) -> None:
    if len(items) < 2:
        raise _invalid("a logical group needs at least two terms")


def _group(item: object, parenthesised: tuple[type, ...]) -> str:
    return f"({item})" if isinstance(item, parenthesised) else str(item)
