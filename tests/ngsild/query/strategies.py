"""Hypothesis strategies: q / type / scope expressions and entities drawn from small shared
pools, so that random queries often hit random entities."""

from __future__ import annotations

import re
from datetime import UTC, date, time
from typing import Any

from hypothesis import strategies as st

from cityhub.ngsild.query import (
    CORE_MEMBERS,
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
from cityhub.ngsild.query.ast import MEMBER_PATTERN, NAME_PATTERN, TYPE_PATTERN, URI_PATTERN
from cityhub.ngsild.query.values import parse_date, parse_datetime, parse_time

VOCAB = "https://ex.org/"


def expand_term(term: str) -> str:
    return VOCAB + term


# ---- arbitrary expressions (round trip) -----------------------------------------------------

# Alphabet-built names (from_regex over Unicode classes is slow); each is checked against the
# grammar's own pattern, so the strategies cannot drift from it.
def _checked(strategy: st.SearchStrategy[str], pattern: str) -> st.SearchStrategy[str]:
    compiled = re.compile(pattern)
    return strategy.filter(lambda text: compiled.fullmatch(text) is not None)


def _joined(first: str, rest: str, max_size: int = 6) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(first), st.text(rest, max_size=max_size)).map("".join)


names = _checked(_joined("abzAZéßΩ_", "ab19_:éZ"), NAME_PATTERN)
member_names = _checked(st.text("ab19_$@:-éZ", min_size=1, max_size=6), MEMBER_PATTERN)
uris = _checked(_joined("aUé", "az09:/.?=#&%-_~!*'+é[]{}<>", 10), URI_PATTERN).filter(
    lambda s: s not in ("true", "false", "null"))
type_names = _checked(_joined("aT:/é1", "aT09:/.#é_-", 8), TYPE_PATTERN)
scope_levels = _checked(st.text("aZ09_-é", min_size=1, max_size=5), r"[\w\-]+")


@st.composite
def paths(draw: st.DrawFn, attrs: st.SearchStrategy[str] = names,
          subs: st.SearchStrategy[str] = names.filter(lambda n: n not in CORE_MEMBERS),
          members: st.SearchStrategy[str] = member_names) -> Path:
    sub = draw(st.lists(subs, max_size=2))
    if draw(st.booleans()) and draw(st.booleans()):
        return Path(draw(attrs), (*sub, draw(st.sampled_from(sorted(CORE_MEMBERS)))))
    return Path(draw(attrs), tuple(sub), tuple(draw(st.lists(members, max_size=2))))


numbers = st.one_of(st.integers(-(10**20), 10**20).map(Number),
                    st.floats(allow_nan=False, allow_infinity=False).map(Number))
texts = st.text().map(Text)
datetimes = st.datetimes(timezones=st.just(UTC)).map(DateTime)
dates = st.dates().map(Date)
times = st.times().map(Time)
comparables = st.one_of(numbers, texts, datetimes, dates, times)
scalars = st.one_of(comparables, st.booleans().map(Bool), uris.map(Uri))


def _range(kind: st.SearchStrategy[Any]) -> st.SearchStrategy[Range]:
    return st.tuples(kind, kind).map(lambda ends: Range(*ends))


ranges = st.one_of(_range(numbers), _range(texts), _range(st.one_of(datetimes, dates)),
                   _range(times))
patterns = st.text(max_size=8).filter(lambda s: _compiles(s)).map(Pattern)


def _compiles(source: str) -> bool:
    try:
        Pattern(source)
    except Exception:
        return False
    return True


@st.composite
def compares(draw: st.DrawFn, path_strategy: st.SearchStrategy[Path],
             comparable: st.SearchStrategy[Any], scalar: st.SearchStrategy[Any],
             range_strategy: st.SearchStrategy[Range],
             pattern: st.SearchStrategy[Pattern]) -> Compare:
    path = draw(path_strategy)
    op = draw(st.sampled_from(list(Op)))
    if op in (Op.MATCH, Op.NO_MATCH):
        return Compare(path, op, draw(pattern))
    if op in (Op.EQ, Op.NE):
        value = draw(st.one_of(scalar, st.lists(scalar, min_size=2, max_size=4).map(
            lambda items: ValueList(tuple(items))), range_strategy))
        return Compare(path, op, value)
    return Compare(path, op, draw(comparable))


def q_exprs(path_strategy: st.SearchStrategy[Path] | None = None,
            comparable: st.SearchStrategy[Any] = comparables,
            scalar: st.SearchStrategy[Any] = scalars,
            range_strategy: st.SearchStrategy[Range] = ranges,
            pattern: st.SearchStrategy[Pattern] = patterns,
            max_leaves: int = 8) -> st.SearchStrategy[QExpr]:
    path_strategy = path_strategy if path_strategy is not None else paths()
    leaves: st.SearchStrategy[QExpr] = st.one_of(
        path_strategy.map(Exists),
        path_strategy.map(NotExists),
        compares(path_strategy, comparable, scalar, range_strategy, pattern),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, min_size=2, max_size=3).map(lambda items: And(tuple(items))),
            st.lists(children, min_size=2, max_size=3).map(lambda items: Or(tuple(items))),
        ),
        max_leaves=max_leaves,
    )


def type_exprs(names: st.SearchStrategy[str] = type_names) -> st.SearchStrategy[TypeExpr]:
    return st.recursive(
        names.map(TypeName),
        lambda children: st.one_of(
            st.lists(children, min_size=2, max_size=3).map(lambda items: TypeAnd(tuple(items))),
            st.lists(children, min_size=2, max_size=3).map(lambda items: TypeOr(tuple(items))),
        ),
        max_leaves=6,
    )


@st.composite
def scope_patterns(draw: st.DrawFn, levels: st.SearchStrategy[str]) -> ScopePattern:
    chosen = tuple(draw(st.lists(st.one_of(levels, st.just("+")), max_size=3)))
    return ScopePattern(chosen, descendants=not chosen or draw(st.booleans()))


def scope_exprs(levels: st.SearchStrategy[str] = scope_levels) -> st.SearchStrategy[ScopeExpr]:
    base = scope_patterns(levels)
    return st.recursive(
        base,
        lambda children: st.one_of(
            st.lists(children, min_size=2, max_size=3).map(lambda items: ScopeAnd(tuple(items))),
            st.lists(children, min_size=2, max_size=3).map(lambda items: ScopeOr(tuple(items))),
        ),
        max_leaves=6,
    )


# ---- small pools (evaluator / SQL agreement) ------------------------------------------------

ATTRS = ["a", "b", "c"]
SUBS = ["s", "t"]
MEMBERS = ["m", "n", "en", "fr"]
TYPES = ["T1", "T2", "T3"]
SCOPES = ["/A", "/A/B", "/A/B/C", "/A/C", "/D", "/A-1/B_2", "/AB"]
INTS = [-2, 0, 1, 3]
FLOATS = [-2.5, 0.5, 1.0, 1e300]
STRINGS = ["", "a", "ab", "b", "B", "é", "a b", "urn:x:1", "10:00:00Z"]
DATETIMES = ["2026-01-01T10:00:00Z", "2026-01-01T12:00:00+02:00", "2025-12-31T23:59:59.5Z",
             "2026-01-01", "2026-01-02"]
TIMES = ["10:00:00Z", "10:00", "12:00:00+02:00", "23:59:59.999Z"]
URIS = ["urn:x:1", "urn:x:2"]
REGEXES = ["a", "^a", "b$", "^$", "a|b", "[ab]+", "^(ab)?$", ".", "é", "A", "a.b", "^[^a]"]

json_scalars = st.one_of(
    st.sampled_from(INTS), st.sampled_from(FLOATS), st.sampled_from(STRINGS),
    st.sampled_from(DATETIMES), st.sampled_from(TIMES), st.booleans(), st.none(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(MEMBERS), children, max_size=3),
        st.sampled_from(DATETIMES).map(lambda v: {"@type": "DateTime", "@value": v}),
    ),
    max_leaves=6,
)


@st.composite
def instances(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Property", "Property", "Relationship", "LanguageProperty",
                                 "ListProperty", "ListRelationship", "VocabProperty",
                                 "JsonProperty", "GeoProperty"]))
    uri = st.sampled_from(URIS)
    body: dict[str, Any] = {"type": kind}
    if kind == "Relationship":
        body["object"] = draw(st.one_of(uri, st.lists(uri, min_size=1, max_size=2)))
    elif kind == "ListRelationship":
        body["objectList"] = [{"object": o} for o in draw(st.lists(uri, max_size=2))]
    elif kind == "LanguageProperty":
        text = st.sampled_from(STRINGS)
        body["languageMap"] = draw(st.dictionaries(
            st.sampled_from(["en", "fr"]), st.one_of(text, st.lists(text, max_size=2)),
            min_size=1))
    elif kind == "ListProperty":
        body["valueList"] = draw(st.lists(json_values, max_size=3))
    elif kind == "VocabProperty":
        body["vocab"] = VOCAB + draw(st.sampled_from(["Male", "Female"]))
    elif kind == "JsonProperty":
        body["json"] = draw(json_values)
    elif kind == "GeoProperty":
        body["value"] = {"type": "Point", "coordinates": draw(st.lists(
            st.sampled_from(INTS), min_size=2, max_size=2))}
    else:
        body["value"] = draw(json_values)
    for core, pool in (("observedAt", DATETIMES), ("unitCode", ["CEL", "KMH"]),
                       ("createdAt", DATETIMES)):
        if draw(st.booleans()):
            body[core] = draw(st.sampled_from(pool))
    if depth == 0 and draw(st.booleans()):
        body["sub"] = draw(st.dictionaries(
            st.sampled_from(SUBS).map(expand_term), instances(depth=1), max_size=2))
    return body


@st.composite
def entities(draw: st.DrawFn, number: int) -> dict[str, Any]:
    attrs: dict[str, list[dict[str, Any]]] = {}
    for name in draw(st.lists(st.sampled_from(ATTRS), unique=True, max_size=3)):
        chosen = draw(st.lists(instances(), min_size=1, max_size=2))
        for index, instance in enumerate(chosen[1:]):
            instance["datasetId"] = f"urn:ds:{index}"
        attrs[expand_term(name)] = chosen
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:E:{number}",
        "type": sorted(expand_term(t) for t in draw(st.sets(st.sampled_from(TYPES),
                                                            min_size=1))),
        "attrs": attrs,
    }
    scopes = draw(st.lists(st.sampled_from(SCOPES), unique=True, max_size=2))
    if scopes:
        entity["scope"] = scopes
    return entity


def _pooled(values: list[str], parse: Any, wrap: Any) -> st.SearchStrategy[Any]:
    parsed = [parse(v) for v in values]
    return st.sampled_from([wrap(p) for p in parsed if p is not None])


_instants = st.one_of(
    _pooled(DATETIMES, parse_datetime, DateTime), _pooled(DATETIMES, parse_date, Date),
    st.just(Date(date(2026, 1, 1))))
_times = st.one_of(_pooled(TIMES, parse_time, Time), st.just(Time(time(10, 0))))
pool_comparables = st.one_of(
    st.sampled_from(INTS + FLOATS).map(Number), st.sampled_from(STRINGS).map(Text),
    _instants, _times)
pool_scalars = st.one_of(pool_comparables, st.booleans().map(Bool),
                         st.sampled_from(URIS).map(Uri))
pool_ranges = st.one_of(
    _range(st.sampled_from(INTS + FLOATS).map(Number)),
    _range(st.sampled_from(STRINGS).map(Text)), _range(_instants), _range(_times))
pool_paths = paths(st.sampled_from([*ATTRS, "z"]), st.sampled_from(SUBS),
                   st.sampled_from(MEMBERS))
pool_q = q_exprs(pool_paths, pool_comparables, pool_scalars, pool_ranges,
                 st.sampled_from(REGEXES).map(Pattern), max_leaves=4)
pool_types = type_exprs(st.sampled_from([*TYPES, "T4"]))
pool_scopes = scope_exprs(st.sampled_from(["A", "B", "C", "D", "A-1", "B_2", "AB"]))
