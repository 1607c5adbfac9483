"""Parsing and printing q (clause 4.9), entity type expressions (4.17) and scopeQ (4.19)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query import (
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
    Range,
    ScopeAnd,
    ScopeOr,
    ScopePattern,
    Text,
    Time,
    TypeAnd,
    TypeName,
    TypeOr,
    Uri,
    ValueList,
    parse_q,
    parse_scope_q,
    parse_type_expr,
)
from tests.ngsild.query.strategies import q_exprs, scope_exprs, type_exprs


def cmp(attr: str, op: str, value: object, **path: tuple[str, ...]) -> Compare:
    return Compare(Path(attr, **path), Op(op), value)  # type: ignore[arg-type]


# The examples of clause 4.9 of ETSI GS CIM 009 V1.9.1.
SPEC_EXAMPLES = {
    "temperature": Exists(Path("temperature")),
    "temperature==20": cmp("temperature", "==", Number(20)),
    'brandName!="Mercedes"': cmp("brandName", "!=", Text("Mercedes")),
    'isParked=="urn:ngsi-ld:OffStreetParking:Downtown1"':
        cmp("isParked", "==", Text("urn:ngsi-ld:OffStreetParking:Downtown1")),
    'speed>50;brandName!="Mercedes"':
        And((cmp("speed", ">", Number(50)), cmp("brandName", "!=", Text("Mercedes")))),
    'isMonitoredBy': Exists(Path("isMonitoredBy")),
    '((speed>50|rpm>3000);brandName=="Mercedes")': And((
        Or((cmp("speed", ">", Number(50)), cmp("rpm", ">", Number(3000)))),
        cmp("brandName", "==", Text("Mercedes")))),
    "(temperature>=20;temperature<=25)|capacity<=10": Or((
        And((cmp("temperature", ">=", Number(20)), cmp("temperature", "<=", Number(25)))),
        cmp("capacity", "<=", Number(10)))),
    "temperature.observedAt>=2017-12-24T12:00:00Z": cmp(
        "temperature", ">=", DateTime(datetime(2017, 12, 24, 12, tzinfo=UTC)),
        sub=("observedAt",)),
    'address[city]=="Berlin"': cmp("address", "==", Text("Berlin"), members=("city",)),
    "sensor.rawdata[airquality.particulate]==40": cmp(
        "sensor", "==", Number(40), sub=("rawdata",), members=("airquality", "particulate")),
    'parkingTickets[value]=="Overstay 60 minutes"': cmp(
        "parkingTickets", "==", Text("Overstay 60 minutes"), members=("value",)),
    "gender==Male": cmp("gender", "==", Uri("Male")),
}


@pytest.mark.parametrize(("text", "expected"), SPEC_EXAMPLES.items())
def test_spec_examples_parse_to_the_expected_tree(text: str, expected: object) -> None:
    assert parse_q(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("a==1,2,3", cmp("a", "==", ValueList((Number(1), Number(2), Number(3))))),
    ('color!="black","red"', cmp("color", "!=", ValueList((Text("black"), Text("red"))))),
    ("a==1..5", cmp("a", "==", Range(Number(1), Number(5)))),
    ("a==-5.5..-1e2", cmp("a", "==", Range(Number(-5.5), Number(-100.0)))),
    ("a!=2026-01-01..2026-02-01T00:00:00+02:00", cmp("a", "!=", Range(
        Date(date(2026, 1, 1)), DateTime(datetime(2026, 1, 31, 22, tzinfo=UTC))))),
    ("a==10:00..11:30:00.25Z",
     cmp("a", "==", Range(Time(time(10)), Time(time(11, 30, 0, 250000))))),
    ("a==01:00+02:00", cmp("a", "==", Time(time(23)))),
    ("a==true,false", cmp("a", "==", ValueList((Bool(True), Bool(False))))),
    ("rel==urn:ngsi-ld:X:1", cmp("rel", "==", Uri("urn:ngsi-ld:X:1"))),
    ("rel==urn:a,urn:b", cmp("rel", "==", ValueList((Uri("urn:a"), Uri("urn:b"))))),
    ("rel==https://ex.org/a?b=c", cmp("rel", "==", Uri("https://ex.org/a?b=c"))),
    ("a==truex", cmp("a", "==", Uri("truex"))),
    ('a=="q\\"uote\\u00e9"', cmp("a", "==", Text('q"uoteé'))),
    ("a~=^ab.*", cmp("a", "~=", Pattern("^ab.*"))),
    ('a!~="(?i)x|y"', cmp("a", "!~=", Pattern("(?i)x|y"))),
    ("!a.b", NotExists(Path("a", ("b",)))),
    ("a.b.unitCode", Exists(Path("a", ("b", "unitCode")))),
    ("a.b[c]", Exists(Path("a", ("b",), ("c",)))),
    ("true", Exists(Path("true"))),
    ("schema:name", Exists(Path("schema:name"))),
    (" a == 1 ; b ", And((cmp("a", "==", Number(1)), Exists(Path("b"))))),
    ("a;b|c;d", Or((And((Exists(Path("a")), Exists(Path("b")))),
                    And((Exists(Path("c")), Exists(Path("d"))))))),
    ("a;(b;c)", And((Exists(Path("a")), And((Exists(Path("b")), Exists(Path("c"))))))),
])
def test_terms_values_and_precedence(text: str, expected: object) -> None:
    assert parse_q(text) == expected


def test_numbers_keep_integer_and_float_apart() -> None:
    value = parse_q("a==10000000000000000000001").value  # type: ignore[union-attr]
    assert isinstance(value, Number)
    assert value.value == 10**22 + 1
    assert isinstance(parse_q("a==1.0").value.value, float)  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "it is empty"),
    ("   ", "it is empty"),
    ("a==", "character 4: unexpected the end"),
    ("a>true", "character 3: unexpected 'true'"),
    ("a>urn:x", "character 3"),
    ("a~=(x)", "character 4"),
    ("a==1..", "character 7"),
    ("(a", "expected ')'"),
    ("a)", "character 2: unexpected ')'"),
    ("a;", "character 3"),
    ("a||b", "character 3"),
    ('a=="x', "character 4: unterminated string"),
    ('a=="\\x"', "character 4: invalid string"),
    ('a~="("', "character 4: invalid regular expression"),
    ("a==2026-13-01", "character 4: invalid date 2026-13-01"),
    ("a==2026-01-01T25:00:00Z", "invalid date-time"),
    ("a==24:00", "invalid time"),
    ("a.observedAt.b", "observedAt must be the last name"),
    ("a.observedAt[x]", "holds no compound members"),
    ('a==1.."x"', "different types"),
    ("a==1..true", "character 7"),
    ("a==null", "null is not a q value"),
    ("a==1e999", "not a finite number"),
    ("sensor{humidity}==40", "linked-entity paths"),
    ("a[*]==1", "character 3"),
    ("a b", "character 3: unexpected 'b'"),
    ("1a", "character 1"),
    ("a==" + "(" * 3, "character 4"),
])
def test_bad_q_raises_bad_request_data_with_the_position(text: str, fragment: str) -> None:
    with pytest.raises(BadRequestData, match="Invalid q") as raised:
        parse_q(text)
    assert fragment in raised.value.detail


def test_too_long_or_too_deep_q_is_refused() -> None:
    with pytest.raises(BadRequestData, match="longer than"):
        parse_q("a;" * 5000 + "a")
    with pytest.raises(BadRequestData, match="nested deeper"):
        parse_q("(a;" * 40 + "b" + ")" * 40)


@pytest.mark.parametrize(("text", "expected"), [
    ("Building", TypeName("Building")),
    ("Building,House", TypeOr((TypeName("Building"), TypeName("House")))),
    ("Building|House", TypeOr((TypeName("Building"), TypeName("House")))),
    ("(Home;Vehicle)", TypeAnd((TypeName("Home"), TypeName("Vehicle")))),
    ("(Home;Vehicle)|Motorhome", TypeOr((TypeAnd((TypeName("Home"), TypeName("Vehicle"))),
                                         TypeName("Motorhome")))),
    ("(Home;Vehicle),Motorhome", TypeOr((TypeAnd((TypeName("Home"), TypeName("Vehicle"))),
                                         TypeName("Motorhome")))),
    ("A;B|C", TypeOr((TypeAnd((TypeName("A"), TypeName("B"))), TypeName("C")))),
    ("https://ex.org/T", TypeName("https://ex.org/T")),
])
def test_type_expressions(text: str, expected: object) -> None:
    assert parse_type_expr(text) == expected


@pytest.mark.parametrize("text", ["", "A,", "(A", "A;;B", "A)", "(A|B"])
def test_bad_type_expressions(text: str) -> None:
    with pytest.raises(BadRequestData, match="Invalid type"):
        parse_type_expr(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("/Madrid", ScopePattern(("Madrid",))),
    ("/Madrid/Gardens/#", ScopePattern(("Madrid", "Gardens"), descendants=True)),
    ("/Madrid/+/ParqueNorte", ScopePattern(("Madrid", "+", "ParqueNorte"))),
    ("/#", ScopePattern((), descendants=True)),
    ("(/Madrid/Districts;/CompanyA)", ScopeAnd((ScopePattern(("Madrid", "Districts")),
                                                ScopePattern(("CompanyA",))))),
    ("(/Madrid/Districts;/CompanyA)|/CompanyB", ScopeOr((
        ScopeAnd((ScopePattern(("Madrid", "Districts")), ScopePattern(("CompanyA",)))),
        ScopePattern(("CompanyB",))))),
    ("/a,/b-1/c_2", ScopeOr((ScopePattern(("a",)), ScopePattern(("b-1", "c_2"))))),
])
def test_scope_queries(text: str, expected: object) -> None:
    assert parse_scope_q(text) == expected


@pytest.mark.parametrize(("text", "fragment"), [
    ("Madrid", "character 1: unexpected 'M'"),
    ("/", "character 1"),
    ("/a//b", "empty scope level"),
    ("/a/#/b", "invalid scope level '#'"),
    ("/a+b", "invalid scope level 'a+b'"),
    ("/a|", "character 4"),
])
def test_bad_scope_queries(text: str, fragment: str) -> None:
    with pytest.raises(BadRequestData, match="Invalid scopeQ") as raised:
        parse_scope_q(text)
    assert fragment in raised.value.detail


def test_printing_uses_the_fewest_parentheses() -> None:
    assert str(parse_q("(a;b)|c")) == "a;b|c"
    assert str(parse_q("((a|b));c")) == "(a|b);c"
    assert str(parse_q("a~=x")) == 'a~="x"'
    assert str(parse_q("a==2026-01-01T12:00:00.5+02:00")) == "a==2026-01-01T10:00:00.500000Z"


@settings(max_examples=60)
@given(q_exprs())
def test_q_round_trips_through_text(expr: object) -> None:
    assert parse_q(str(expr)) == expr


@settings(max_examples=60)
@given(type_exprs())
def test_type_expressions_round_trip(expr: object) -> None:
    assert parse_type_expr(str(expr)) == expr


@settings(max_examples=40)
@given(scope_exprs())
def test_scope_queries_round_trip(expr: object) -> None:
    assert parse_scope_q(str(expr)) == expr


Q_ALPHABET = st.sampled_from([*'ab.[]()|;,!=<>~"\\ 0123456789-:TZ+#/{}*', "..", "true"])


@settings(max_examples=150)
@given(st.one_of(st.text(max_size=30), st.lists(Q_ALPHABET, max_size=25).map("".join)))
def test_any_text_parses_or_raises_bad_request_data(text: str) -> None:
    for parse in (parse_q, parse_type_expr, parse_scope_q):
        try:
            parse(text)
        except BadRequestData as error:
            detail = error.detail
        else:
            continue
        assert detail.startswith("Invalid ")
