"""In-memory matching: the semantics documented in cityhub.ngsild.query.evaluate."""

from __future__ import annotations

from typing import Any

import pytest

from cityhub.ngsild.query import (
    expand,
    matches,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    scope_matches,
    type_matches,
)
from tests.ngsild.query.cases import CAR, Q_CASES, SCOPE_CASES, TYPE_CASES, entity, prop
from tests.ngsild.query.strategies import VOCAB, expand_term


def q(text: str, target: dict[str, Any]) -> bool:
    return matches(expand(parse_q(text), expand_term), target)


@pytest.mark.parametrize(("text", "expected"), Q_CASES)
def test_q_semantics(text: str, expected: bool) -> None:
    assert q(text, CAR) is expected


def test_a_path_too_long_to_index_never_matches() -> None:
    long_name = "x" * 400
    target = entity(**{long_name: prop(1)})
    assert not q(long_name, target)
    assert q("!" + long_name, target)


def test_malformed_entities_do_not_raise() -> None:
    odd = {"id": "urn:x", "attrs": {VOCAB + "a": ["not an instance", {"type": ["x"]}],
                                    VOCAB + "b": {"type": "Property"}}}
    assert q("a", odd)
    assert not q("a==1", odd)
    assert q("b", odd)
    assert not q("c", {"id": "urn:x"})


@pytest.mark.parametrize(("text", "expected"), TYPE_CASES)
def test_type_selection(text: str, expected: bool) -> None:
    assert type_matches(expand(parse_type_expr(text), expand_term), CAR) is expected


def test_an_entity_with_several_types_matches_a_conjunction() -> None:
    both = {"id": "urn:x", "type": [VOCAB + "Home", VOCAB + "Vehicle"], "attrs": {}}
    assert type_matches(expand(parse_type_expr("(Home;Vehicle)"), expand_term), both)


@pytest.mark.parametrize(("text", "expected"), SCOPE_CASES)
def test_scope_selection(text: str, expected: bool) -> None:
    assert scope_matches(parse_scope_q(text), CAR) is expected


def test_any_scope_needs_a_scope() -> None:
    assert not scope_matches(parse_scope_q("/#"), {"id": "urn:x", "attrs": {}})


def test_expand_maps_terms_but_not_core_members_or_compound_keys() -> None:
    expanded = expand(parse_q("speed.accuracy.observedAt>1;address[city.name]==x"), expand_term)
    assert str(expanded) == (f"{VOCAB}speed.{VOCAB}accuracy.observedAt>1;"
                             f"{VOCAB}address[city.name]==x")


def test_expand_values_expands_the_compared_terms_of_listed_attributes() -> None:
    expr = expand(parse_q('gender==Male,"Female";other==Male'), expand_term,
                  expand_values={"gender"})
    assert str(expr) == f'{VOCAB}gender=="{VOCAB}Male","{VOCAB}Female";{VOCAB}other==Male'
    assert matches(expr.items[0], CAR)  # type: ignore[union-attr]


def test_expand_type_names() -> None:
    assert str(expand(parse_type_expr("(A;B),C"), expand_term)) == (
        f"{VOCAB}A;{VOCAB}B|{VOCAB}C")
