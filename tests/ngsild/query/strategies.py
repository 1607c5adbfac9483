"""Hypothesis strategies: q / type / scope expressions and entities drawn from small shared
pools, so that random queries often hit random entities."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, time
from typing import Any

from hypothesis import strategies as st

from cityhub.ngsild.errors import BadRequestData
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
    parse_q,
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


_cores_sorted = st.sampled_from(sorted(CORE_MEMBERS))
_plain_names = names.filter(lambda n: n not in CORE_MEMBERS)


def paths(attrs: st.SearchStrategy[str] = names,
          subs: st.SearchStrategy[str] = _plain_names,
          members: st.SearchStrategy[str] = member_names) -> st.SearchStrategy[Path]:
    sub_lists, member_lists = st.lists(subs, max_size=2), st.lists(members, max_size=2)

    @st.composite
    def build(draw: st.DrawFn) -> Path:
        sub = draw(sub_lists)
        if draw(st.booleans()) and draw(st.booleans()):
            return Path(draw(attrs), (*sub, draw(_cores_sorted)))
        return Path(draw(attrs), tuple(sub), tuple(draw(member_lists)))

    return build()


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


def scope_patterns(levels: st.SearchStrategy[str],
                   max_levels: int = 3) -> st.SearchStrategy[ScopePattern]:
    level_lists = st.lists(st.one_of(levels, st.just("+")), max_size=max_levels)

    @st.composite
    def build(draw: st.DrawFn) -> ScopePattern:
        chosen = tuple(draw(level_lists))
        return ScopePattern(chosen, descendants=not chosen or draw(st.booleans()))

    return build()


def scope_exprs(levels: st.SearchStrategy[str] = scope_levels,
                max_levels: int = 3) -> st.SearchStrategy[ScopeExpr]:
    base = scope_patterns(levels, max_levels)
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
SCOPES = ["/A", "/A/B", "/A/B/C", "/A/C", "/D", "/A-1/B_2", "/AB", "/A/BC", "/AB/C"]
INTS = [-2, 0, 1, 3]
FLOATS = [-2.5, 0.5, 1.0, 1e300]
STRINGS = ["", "a", "ab", "b", "B", "é", "a b", "urn:x:1", "10:00:00Z"]
# The .000000Z forms are already normalised (values.py kind "c"), like the broker's timestamps.
DATETIMES = ["2026-01-01T10:00:00Z", "2026-01-01T12:00:00+02:00", "2025-12-31T23:59:59.5Z",
             "2026-01-01", "2026-01-02", "2026-01-01T10:00:00.000000Z",
             "2025-12-31T23:59:59.500000Z"]
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


_uri = st.sampled_from(URIS)
_text = st.sampled_from(STRINGS)
_kinds = st.sampled_from(["Property", "Property", "Relationship", "LanguageProperty",
                          "ListProperty", "ListRelationship", "VocabProperty", "JsonProperty",
                          "GeoProperty"])
_objects = st.one_of(_uri, st.lists(_uri, min_size=1, max_size=2))
_object_lists = st.lists(_uri, max_size=2)
_language_maps = st.dictionaries(st.sampled_from(["en", "fr"]),
                                 st.one_of(_text, st.lists(_text, max_size=2)), min_size=1)
_value_lists = st.lists(json_values, max_size=3)
_vocabs = st.sampled_from(["Male", "Female"]).map(expand_term)
_points = st.lists(st.sampled_from(INTS), min_size=2, max_size=2)
_cores = [(core, st.one_of(st.none(), st.sampled_from(pool))) for core, pool in (
    ("observedAt", DATETIMES), ("unitCode", ["CEL", "KMH"]), ("createdAt", DATETIMES))]


@st.composite
def _instances(draw: st.DrawFn, subs: st.SearchStrategy[dict[str, Any]] | None) -> dict[str, Any]:
    kind = draw(_kinds)
    body: dict[str, Any] = {"type": kind}
    if kind == "Relationship":
        body["object"] = draw(_objects)
    elif kind == "ListRelationship":
        body["objectList"] = [{"object": o} for o in draw(_object_lists)]
    elif kind == "LanguageProperty":
        body["languageMap"] = draw(_language_maps)
    elif kind == "ListProperty":
        body["valueList"] = draw(_value_lists)
    elif kind == "VocabProperty":
        body["vocab"] = draw(_vocabs)
    elif kind == "JsonProperty":
        body["json"] = draw(json_values)
    elif kind == "GeoProperty":
        body["value"] = {"type": "Point", "coordinates": draw(_points)}
    else:
        body["value"] = draw(json_values)
    for core, values in _cores:
        value = draw(values)
        if value is not None:
            body[core] = value
    if subs is not None:
        sub = draw(subs)
        if sub:
            body["sub"] = sub
    return body


_sub_instances = _instances(None)
_top_instances = _instances(st.dictionaries(st.sampled_from(SUBS).map(expand_term),
                                            _sub_instances, max_size=2))
_attr_names = st.lists(st.sampled_from(ATTRS), unique=True, min_size=1, max_size=3)
_attr_instances = st.lists(_top_instances, min_size=1, max_size=2)
_type_sets = st.sets(st.sampled_from(TYPES), min_size=1)
_scope_lists = st.lists(st.sampled_from(SCOPES), unique=True, max_size=2)


@st.composite
def entities(draw: st.DrawFn, number: int) -> dict[str, Any]:
    attrs: dict[str, list[dict[str, Any]]] = {}
    for name in draw(_attr_names):
        chosen = draw(_attr_instances)
        for index, instance in enumerate(chosen[1:]):
            instance["datasetId"] = f"urn:ds:{index}"
        attrs[expand_term(name)] = chosen
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:E:{number}",
        "type": sorted(expand_term(t) for t in draw(_type_sets)),
        "attrs": attrs,
    }
    scopes = draw(_scope_lists)
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
pool_scopes = scope_exprs(st.sampled_from(["A", "B", "C", "D", "A-1", "B_2", "AB"]), 2)


# ---- queries drawn from a world's own data (so most of them hit something) ----------------

def _compact(name: str) -> str:
    return name[len(VOCAB):] if name.startswith(VOCAB) else name


def _scalars(value: Any, relationship: bool) -> Iterator[Any]:
    """q values for the scalars of a target value (written apart from the package's own
    leaf logic, so that a bug there cannot hide the paths it drops)."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict) and "@value" in item:
            item = item["@value"]
        if isinstance(item, bool):
            yield Bool(item)
        elif isinstance(item, int | float) and abs(item) < 1e308:
            yield Number(item)
        elif isinstance(item, str):
            yield Uri(item) if relationship else Text(item)
            for parse, wrap in ((parse_datetime, DateTime), (parse_date, Date),
                                (parse_time, Time)):
                parsed = parse(item)
                if parsed is not None and not relationship:
                    yield wrap(parsed)


def _member_facts(attr: str, subs: tuple[str, ...], members: tuple[str, ...],
                  value: dict[str, Any]) -> Iterator[tuple[Path, Any]]:
    for key, item in value.items():
        path = Path(attr, subs, (*members, key))
        yield path, None
        yield from ((path, scalar) for scalar in _scalars(item, False))
        if isinstance(item, dict):
            yield from _member_facts(attr, subs, (*members, key), item)


def _instance_facts(attr: str, subs: tuple[str, ...],
                    instance: dict[str, Any]) -> Iterator[tuple[Path, Any]]:
    kind = instance["type"]
    target = {
        "Relationship": instance.get("object"),
        "ListRelationship": [o["object"] for o in instance.get("objectList", [])],
        "LanguageProperty": instance.get("languageMap"),
        "ListProperty": instance.get("valueList"),
        "VocabProperty": instance.get("vocab"),
        "JsonProperty": instance.get("json"),
    }.get(kind, instance.get("value"))
    path = Path(attr, subs)
    yield path, None
    if kind == "LanguageProperty":
        for texts in target.values():
            yield from ((path, scalar) for scalar in _scalars(texts, False))
    else:
        relationship = kind in ("Relationship", "ListRelationship")
        yield from ((path, scalar) for scalar in _scalars(target, relationship))
    for core in CORE_MEMBERS.intersection(instance):
        yield from ((Path(attr, (*subs, core)), scalar)
                    for scalar in [None, *_scalars(instance[core], False)])
    if isinstance(target, dict):
        yield from _member_facts(attr, subs, (), target)
    for name, sub in instance.get("sub", {}).items():
        yield from _instance_facts(attr, (*subs, _compact(name)), sub)


def world_facts(world: list[dict[str, Any]]) -> list[tuple[Path, Any]]:
    """(path, value) for every node and scalar of the entities (value None for the node
    itself), with the path spelled as request terms and kept only if q can spell it."""
    facts: dict[tuple[Path, Any], None] = {}
    for item in world:
        for iri, instances in item["attrs"].items():
            for instance in instances:
                for path, value in _instance_facts(_compact(iri), (), instance):
                    try:
                        if parse_q(str(path)) == Exists(path):
                            facts[(path, value)] = None
                    except BadRequestData:
                        continue
    return list(facts)


_ORDERED_OPS = [Op.GT, Op.GE, Op.LT, Op.LE]
_EQUALITY_OPS = [Op.EQ, Op.NE]
_choices = st.integers(0, 5)
_quarters = st.integers(0, 3)
_pattern_ops = st.sampled_from([Op.MATCH, Op.NO_MATCH])
_regexes = st.sampled_from(REGEXES)
_equality_ops = st.sampled_from(_EQUALITY_OPS)
_any_ops = st.sampled_from(_EQUALITY_OPS + _ORDERED_OPS * 2)
_indexes = st.integers(0, 10**6)
_shapes = st.sampled_from(["leaf", "leaf", "and", "or", "and-or", "or-and"])


def _world_compare(draw: st.DrawFn, facts: list[tuple[Path, Any]], values: list[Any]) -> QExpr:
    path, value = facts[draw(_indexes) % len(facts)]
    if value is None or draw(_quarters) == 0:
        path = facts[draw(_indexes) % len(facts)][0] if draw(st.booleans()) \
            else draw(pool_paths)
        value = values[draw(_indexes) % len(values)] if draw(st.booleans()) \
            else draw(pool_scalars)
    choice = draw(_choices)
    if choice == 0:
        return Compare(path, draw(_pattern_ops), Pattern(draw(_regexes)))
    comparable = isinstance(value, Number | Text | DateTime | Date | Time)
    if choice == 1 and comparable:
        other = values[draw(_indexes) % len(values)]
        if type(other) is type(value) or (isinstance(value, DateTime | Date)
                                          and isinstance(other, DateTime | Date)):
            ends = (value, other) if draw(st.booleans()) else (other, value)
            return Compare(path, draw(_equality_ops), Range(*ends))
    if choice == 2:
        more = [values[draw(_indexes) % len(values)] for _ in range(1 + draw(_quarters) % 2)]
        items = tuple(dict.fromkeys([value, *more]))
        if len(items) >= 2:
            return Compare(path, draw(_equality_ops), ValueList(items))
    return Compare(path, draw(_any_ops if comparable else _equality_ops), value)


def _world_term(draw: st.DrawFn, facts: list[tuple[Path, Any]], values: list[Any]) -> QExpr:
    choice = draw(_choices)
    if choice == 0:
        return Exists(facts[draw(_indexes) % len(facts)][0])
    if choice == 1:
        path = facts[draw(_indexes) % len(facts)][0] if draw(st.booleans()) \
            else draw(pool_paths)
        return NotExists(path)
    return _world_compare(draw, facts, values)


@st.composite
def world_query(draw: st.DrawFn, world: list[dict[str, Any]]) -> QExpr:
    """A q expression whose paths and values mostly come from the world's own leaves
    (built without per-world strategies: those would be re-validated on every example)."""
    facts = world_facts(world)
    if not facts:
        return draw(pool_q)
    values = [value for _, value in facts if value is not None] or [Bool(True)]

    def term() -> QExpr:
        return _world_term(draw, facts, values)

    shape = draw(_shapes)
    if shape == "leaf":
        return term()
    if shape == "and":
        return And((term(), term()))
    if shape == "or":
        return Or((term(), term()))
    if shape == "and-or":
        return And((term(), Or((term(), term()))))
    return Or((term(), And((term(), term()))))
