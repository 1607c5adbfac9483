"""The attr_index rows of an entity, the DDL, and the shape of the compiled SQL."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from cityhub.ngsild.query import (
    INDEX_COLUMNS,
    compile_q,
    compile_scope,
    compile_type,
    expand,
    index_ddl,
    index_rows,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    sqlite_regexp,
)
from cityhub.ngsild.query.plan import SCOPE_KEY, TYPE_KEY
from cityhub.ngsild.query.targets import path_key, path_text, text_key
from cityhub.ngsild.query.values import value_leaves
from tests.ngsild.query.strategies import VOCAB, expand_term

SPEED = text_key(f'["{VOCAB}speed"]')


def key(*names: str) -> int:
    """The stored key of a readable path key, e.g. key('["https://ex.org/speed"]')."""
    return text_key("[" + ",".join(names) + "]")


def test_rows_cover_values_core_members_sub_attributes_members_types_and_scopes() -> None:
    speed = f'"{VOCAB}speed"'
    target = {
        "id": "urn:x",
        "type": [VOCAB + "Car"],
        "scope": ["/A/B"],
        "attrs": {
            VOCAB + "speed": [{
                "type": "Property", "value": [55, "fast", True, None, [1]],
                "observedAt": "2026-01-01T12:00:00+02:00", "unitCode": "KMH",
                "modifiedAt": "2026-01-01T10:00:00.000000Z",
                "sub": {VOCAB + "accuracy": {"type": "Property", "value": 0.5}},
            }],
            VOCAB + "address": [{"type": "Property", "value": {"city": "Berlin", "geo": {}}}],
            VOCAB + "owner": [{"type": "Relationship", "object": "urn:p:1"}],
        },
    }
    assert sorted(index_rows(target), key=str) == sorted([
        (SPEED, "n", 55.0, None),
        (SPEED, "s", None, "fast"),
        (SPEED, "b", 1.0, None),
        (key(speed, '"observedAt"'), "s", None, "2026-01-01T12:00:00+02:00"),
        (key(speed, '"observedAt"'), "d", None, "2026-01-01T10:00:00.000000Z"),
        (key(speed, '"unitCode"'), "s", None, "KMH"),
        (key(speed, f'"{VOCAB}accuracy"'), "n", 0.5, None),
        (key(f'"{VOCAB}address"'), "x", None, None),
        (key(f'"{VOCAB}address"', '["city"]'), "s", None, "Berlin"),
        (key(f'"{VOCAB}address"', '["geo"]'), "x", None, None),
        (key(f'"{VOCAB}owner"'), "r", None, "urn:p:1"),
        (text_key("@type"), "s", None, VOCAB + "Car"),
        (text_key("@scope"), "s", None, "/A/B"),
    ], key=str)
    assert INDEX_COLUMNS == ("path", "kind", "num", "txt")


def test_path_keys_are_signed_64_bit_hashes_of_the_readable_keys() -> None:
    readable = path_text((VOCAB + "speed", "observedAt"))
    assert readable == f'["{VOCAB}speed","observedAt"]'
    assert path_key((VOCAB + "speed", "observedAt")) == text_key(readable)
    assert path_text(("a",), ("m", 'n"')) == '["a",["m","n\\""]]'
    assert path_key(("a",), ("m",)) != path_key(("a", "m"))
    keys = {path_key((f"{VOCAB}a{i}",)) for i in range(1000)}
    assert len(keys) == 1000
    assert all(-(2**63) <= k < 2**63 for k in keys if k is not None)
    assert path_key(("x" * 300,)) is None  # longer than MAX_KEY: never indexed or matched


def test_normalised_date_times_are_one_leaf_and_others_two() -> None:
    normal = "2026-01-01T10:00:00.000000Z"
    assert value_leaves(normal) == [("c", None, normal)]
    assert value_leaves("2026-01-01T10:00:00Z") == [
        ("s", None, "2026-01-01T10:00:00Z"), ("d", None, normal)]
    # the normalised form, but no such day, or digits that are not ASCII: a string only
    assert value_leaves("2026-02-30T10:00:00.000000Z") == [
        ("s", None, "2026-02-30T10:00:00.000000Z")]
    arabic = "\u0662026-01-01T10:00:00.000000Z"
    assert value_leaves(arabic) == [("s", None, arabic), ("d", None, normal)]
    assert value_leaves("10:00:00.000000") == [("s", None, "10:00:00.000000"),
                                               ("t", None, "10:00:00.000000")]


def test_rows_have_no_duplicates_and_skip_non_finite_numbers() -> None:
    target = {"id": "urn:x", "attrs": {VOCAB + "speed": [
        {"type": "Property", "value": [1, 1, 1.0, float("nan"), 10**400]},
        {"type": "Property", "value": 1, "datasetId": "urn:ds:1"},
    ]}}
    rows = index_rows(target)
    assert [row for row in rows if row[0] == SPEED] == [(SPEED, "n", 1.0, None)]


def test_deeply_nested_values_do_not_recurse_and_long_keys_are_not_indexed() -> None:
    value: dict[str, Any] = {}
    inner = value
    for _ in range(5000):
        inner["k"] = {}
        inner = inner["k"]
    rows = index_rows({"id": "urn:x", "attrs": {VOCAB + "deep": [{"type": "Property",
                                                                   "value": value}]}})
    depths = [n for n in range(5000) if len(path_text((VOCAB + "deep",), ("k",) * n)) <= 300]
    assert len(depths) < 100
    assert sorted(rows) == sorted((path_key((VOCAB + "deep",), ("k",) * n), "x", None, None)
                                  for n in depths)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_ddl_has_the_table_and_its_indexes(dialect: str) -> None:
    statements = index_ddl(dialect)  # type: ignore[arg-type]
    table = statements[0]
    assert table.startswith("CREATE TABLE IF NOT EXISTS attr_index")
    assert "tenant TEXT NOT NULL" in table
    big = "BIGINT" if dialect == "postgres" else "INTEGER"
    assert f"eid {big} NOT NULL" in table
    assert f"path {big} NOT NULL" in table
    assert "REFERENCES" not in table  # the store deletes rows by eid itself
    assert all(s.startswith("CREATE INDEX IF NOT EXISTS") for s in statements[1:])
    assert [s.split(" ON ")[1] for s in statements[1:]] == [
        "attr_index (tenant, path, kind, num, "
        + ("(left(txt, 150)), eid)" if dialect == "postgres" else "txt, eid)"),
        "attr_index (eid, path, kind, num, "
        + ("(left(txt, 150)))" if dialect == "postgres" else "txt)")]


def test_sqlite_ddl_is_idempotent_and_rows_go_by_eid() -> None:
    conn = sqlite3.connect(":memory:")
    for _ in range(2):
        for statement in index_ddl("sqlite"):
            conn.execute(statement)
    entity = {"id": "urn:x", "type": ["T"], "attrs": {"a": [{"type": "Property", "value": 1}]}}
    for eid in (1, 2):
        conn.executemany("INSERT INTO attr_index VALUES ('t', ?, ?, ?, ?, ?)",
                         [(eid, *row) for row in index_rows(entity)])
    conn.execute("DELETE FROM attr_index WHERE eid IN (1)")
    assert conn.execute("SELECT eid, path, typeof(path) FROM attr_index WHERE kind = 'n'"
                        ).fetchall() == [(2, path_key(("a",)), "integer")]


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="dialect"):
        index_ddl("mysql")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dialect"):
        compile_q(parse_q("a"), "mysql")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alias"):
        compile_q(parse_q("a"), "sqlite", alias="e; DROP TABLE x")


def test_sqlite_regexp_searches_strings_only() -> None:
    assert sqlite_regexp("b+", "abbc")
    assert not sqlite_regexp("^b", "abbc")
    assert sqlite_regexp("a.c", "a\nc")
    assert not sqlite_regexp("1", 1)
    assert not sqlite_regexp("(", "(")


QUERIES = [
    'a==1,2;b!="x"|(c~="^a";!d)', "a==1..2", 'a!~="z"', "a>2026-01-01", 'a>"m"',
    "a.s.observedAt<=10:00", "a[m.n]==urn:x", "a==true",
]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
@pytest.mark.parametrize("text", QUERIES)
def test_compiled_sql_is_parameterised_and_only_touches_eid_and_tenant(
        dialect: str, text: str) -> None:
    expr = expand(parse_q(text), expand_term)
    for tenant in (None, "t1"):
        sql, params = compile_q(expr, dialect, alias="ent", tenant=tenant)  # type: ignore[arg-type]
        assert sql.count("?") == len(params)
        assert "%" not in sql
        for literal in ("urn:x", "2026", "'m'"):
            assert literal not in sql
        referenced = {word for word in sql.replace("(", " ").split() if word.startswith("ent.")}
        assert referenced <= {"ent.eid", "ent.tenant"}
        assert ("ent.tenant" in sql) is (tenant is None)


def test_type_and_scope_sql_use_their_own_paths() -> None:
    sql, params = compile_type(expand(parse_type_expr("A|B"), expand_term), "sqlite")
    assert params == [TYPE_KEY, VOCAB + "A", TYPE_KEY, VOCAB + "B"]
    sql, params = compile_scope(parse_scope_q("/A/#"), "sqlite", tenant="t")
    assert params == ["t", SCOPE_KEY, "/A", "/A/", "/A0"]
    sql, params = compile_scope(parse_scope_q("/A/+"), "postgres")
    assert "txt ~ ?" in sql
    assert params == [SCOPE_KEY, r"\A/A/[^/]+\Z"]


# What each kind of term must reach in the value index (SQLite prints `num IS NULL` as num=?).
INDEX_USE = [
    ("a", "(tenant=? AND path=?)"),
    ("a>1", "(tenant=? AND path=? AND kind=? AND num>?)"),
    ("a==true", "(tenant=? AND path=? AND kind=? AND num=?)"),
    ('a=="x"', "(tenant=? AND path=? AND kind=? AND num=? AND txt=?)"),
    ('a>"m"', "(tenant=? AND path=? AND kind=? AND num=? AND txt>?)"),
    ("a<2026-01-01", "(tenant=? AND path=? AND kind=? AND num=? AND txt<?)"),
    ("a.observedAt==2026-01-01..2026-02-01", "(tenant=? AND path=? AND kind=? AND num=? "
                                             "AND txt>? AND txt<?)"),
    ('a~="x"', "(tenant=? AND path=? AND kind=? AND num=?)"),
]


@pytest.mark.parametrize(("text", "constraints"), INDEX_USE)
def test_sqlite_answers_each_term_from_the_value_index(
        sqlite_db: sqlite3.Connection, text: str, constraints: str) -> None:
    for tenant in ("t1", None):
        sql, params = compile_q(expand(parse_q(text), expand_term), "sqlite", tenant=tenant)
        plan = sqlite_db.execute(
            f"EXPLAIN QUERY PLAN SELECT e.id FROM entities e WHERE e.tenant = ? AND {sql}",  # noqa: S608 - compiled SQL, values are parameters
            ["t1", *params]).fetchall()
        steps = [str(step[3]) for step in plan if "attr_index" in str(step[3])]
        assert steps == [f"SEARCH attr_index USING COVERING INDEX attr_index_lookup {constraints}"]


@pytest.mark.parametrize(("text", "condition"), [
    ("a>1", "(num > '1'::double precision)"),
    ('a>"m"', "(num IS NULL) AND (\"left\"(txt, 150) >= 'm'::text)"),
    ("a<2026-01-01", "(num IS NULL) AND (\"left\"(txt, 150) <= '2026-01-01T00:00:00.000000Z'"),
])
def test_postgres_answers_terms_from_the_value_index(pg_db: Any, text: str,
                                                     condition: str) -> None:
    sql, params = compile_q(expand(parse_q(text), expand_term), "postgres", tenant="t1")
    with pg_db.transaction(force_rollback=True):
        pg_db.execute("SET LOCAL enable_seqscan = off")
        plan = [row[0] for row in pg_db.execute(
            f"EXPLAIN SELECT e.id FROM entities e WHERE e.tenant = %s AND {sql}".replace(  # noqa: S608 - compiled SQL, values are parameters
                "?", "%s"), ["t1", *params])]
    scan = next(at for at, step in enumerate(plan) if "attr_index_lookup" in step)
    assert plan[scan + 1].strip().startswith("Index Cond: ")
    assert condition in plan[scan + 1]


@pytest.mark.parametrize(("text", "lists", "probes"), [
    ('a>1;r=="urn:x"', "(tenant=? AND path=? AND kind=? AND num=? AND txt=?)",
     ["(eid=? AND path=? AND kind=? AND num>?)"]),
    ('a>1;r=="urn:x";c', "(tenant=? AND path=? AND kind=? AND num=? AND txt=?)",
     ["(eid=? AND path=? AND kind=? AND num>?)", "(eid=? AND path=?)"]),
])
def test_sqlite_lists_an_equality_and_probes_the_other_terms_per_candidate(
        sqlite_db: sqlite3.Connection, text: str, lists: str, probes: list[str]) -> None:
    """AND-ed terms where one is an equality: it lists the candidates from the value index,
    and every other term is one seek per candidate in the entity index, both covering."""
    sql, params = compile_q(expand(parse_q(text), expand_term), "sqlite", tenant="t1")
    plan = sqlite_db.execute(
        f"EXPLAIN QUERY PLAN SELECT e.id FROM entities e WHERE +e.tenant = ? AND {sql}",  # noqa: S608 - compiled SQL, values are parameters
        ["t1", *params]).fetchall()
    steps = [str(step[3]) for step in plan if "attr_index" in str(step[3])]
    assert steps == [f"SEARCH a USING COVERING INDEX attr_index_lookup {lists}",
                     *(f"SEARCH b USING COVERING INDEX attr_index_entity {probe}"
                       for probe in probes)]


def test_sqlite_intersects_two_ranges_inside_the_value_index(
        sqlite_db: sqlite3.Connection) -> None:
    sql, params = compile_q(expand(parse_q("a>1;b<2"), expand_term), "sqlite", tenant="t1")
    plan = sqlite_db.execute(
        f"EXPLAIN QUERY PLAN SELECT e.id FROM entities e WHERE +e.tenant = ? AND {sql}",  # noqa: S608 - compiled SQL, values are parameters
        ["t1", *params]).fetchall()
    steps = [str(step[3]) for step in plan if "attr_index" in str(step[3])]
    assert steps == [
        "SEARCH attr_index USING COVERING INDEX attr_index_lookup "
        "(tenant=? AND path=? AND kind=? AND num>?)",
        "SEARCH attr_index USING COVERING INDEX attr_index_lookup "
        "(tenant=? AND path=? AND kind=? AND num<?)"]
