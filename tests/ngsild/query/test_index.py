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
from tests.ngsild.query.strategies import VOCAB, expand_term

SPEED = f'["{VOCAB}speed"]'


def test_rows_cover_values_core_members_sub_attributes_members_types_and_scopes() -> None:
    target = {
        "id": "urn:x",
        "type": [VOCAB + "Car"],
        "scope": ["/A/B"],
        "attrs": {
            VOCAB + "speed": [{
                "type": "Property", "value": [55, "fast", True, None, [1]],
                "observedAt": "2026-01-01T12:00:00+02:00", "unitCode": "KMH",
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
        (f'["{VOCAB}speed","observedAt"]', "s", None, "2026-01-01T12:00:00+02:00"),
        (f'["{VOCAB}speed","observedAt"]', "d", None, "2026-01-01T10:00:00.000000Z"),
        (f'["{VOCAB}speed","unitCode"]', "s", None, "KMH"),
        (f'["{VOCAB}speed","{VOCAB}accuracy"]', "n", 0.5, None),
        (f'["{VOCAB}address"]', "x", None, None),
        (f'["{VOCAB}address",["city"]]', "s", None, "Berlin"),
        (f'["{VOCAB}address",["geo"]]', "x", None, None),
        (f'["{VOCAB}owner"]', "r", None, "urn:p:1"),
        ("@type", "s", None, VOCAB + "Car"),
        ("@scope", "s", None, "/A/B"),
    ], key=str)
    assert INDEX_COLUMNS == ("path", "kind", "num", "txt")


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
    assert rows
    assert max(len(row[0]) for row in rows) <= 300
    assert len(rows) < 100


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_ddl_has_the_table_and_its_indexes(dialect: str) -> None:
    statements = index_ddl(dialect)  # type: ignore[arg-type]
    table = statements[0]
    assert table.startswith("CREATE TABLE IF NOT EXISTS attr_index")
    assert "tenant TEXT NOT NULL" in table
    assert ("eid BIGINT" if dialect == "postgres" else "eid INTEGER") in table
    assert "REFERENCES entities(eid) ON DELETE CASCADE" in table
    assert all(s.startswith("CREATE INDEX IF NOT EXISTS") for s in statements[1:])
    assert any("(eid)" in s for s in statements[1:])
    assert "REFERENCES" not in index_ddl(dialect, references=None)[0]  # type: ignore[arg-type]


def test_sqlite_ddl_is_idempotent_and_rows_go_with_their_entity() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE entities (eid INTEGER PRIMARY KEY, tenant TEXT, id TEXT)")
    for _ in range(2):
        for statement in index_ddl("sqlite"):
            conn.execute(statement)
    conn.execute("INSERT INTO entities VALUES (1, 't', 'urn:x')")
    conn.executemany("INSERT INTO attr_index VALUES ('t', 1, ?, ?, ?, ?)",
                     index_rows({"id": "urn:x", "type": ["T"], "attrs": {}}))
    conn.execute("DELETE FROM entities WHERE eid = 1")
    assert conn.execute("SELECT count(*) FROM attr_index").fetchone() == (0,)


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
    assert params == ["@type", VOCAB + "A", "@type", VOCAB + "B"]
    sql, params = compile_scope(parse_scope_q("/A/#"), "sqlite", tenant="t")
    assert params == ["t", "@scope", "/A", "/A/", "/A0"]
    sql, params = compile_scope(parse_scope_q("/A/+"), "postgres")
    assert "txt ~ ?" in sql
    assert params == ["@scope", r"\A/A/[^/]+\Z"]
