"""Term maps: expansion and compaction of names under user @contexts, and their cache."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyld import jsonld as pyld_jsonld

from cityhub.ngsild import term_map
from cityhub.ngsild.context_loader import DocumentLoader
from cityhub.ngsild.errors import BadRequestData, LdContextNotAvailable
from cityhub.ngsild.model import CORE_CONTEXT_URL, DEFAULT_VOCAB, NGSI_LD
from cityhub.ngsild.term_map import ContextResolver, TermMap

VOCAB = "https://vocab.example.org/"
USER = {
    "Vehicle": VOCAB + "Vehicle",
    "speed": VOCAB + "speed",
    "vx": VOCAB,
    "sdm": "https://smartdatamodels.org/",
    "brand": "https://schema.org/brand",
}
RESOLVER = ContextResolver(DocumentLoader())
NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True)


@pytest.fixture
def user() -> TermMap:
    return RESOLVER.term_map(USER)


@pytest.fixture
def core() -> TermMap:
    return RESOLVER.term_map(None)


def test_user_terms_expand_to_the_user_iri(user: TermMap) -> None:
    assert user.expand_term("speed") == VOCAB + "speed"
    assert user.expand_term("Vehicle") == VOCAB + "Vehicle"


def test_undefined_terms_go_to_the_default_vocab(user: TermMap, core: TermMap) -> None:
    assert user.expand_term("colour") == DEFAULT_VOCAB + "colour"
    assert core.expand_term("speed") == DEFAULT_VOCAB + "speed"


def test_core_terms_compact_iris_and_absolute_iris(core: TermMap, user: TermMap) -> None:
    assert core.expand_term("location") == NGSI_LD + "location"
    assert core.expand_term("ngsi-ld:anything") == NGSI_LD + "anything"
    assert user.expand_term("vx:colour") == VOCAB + "colour"
    assert user.expand_term("sdm:TrafficFlowObserved") == (
        "https://smartdatamodels.org/TrafficFlowObserved"
    )
    for iri in ["https://other.example.org/x", "urn:ngsi-ld:Thing:1", "_:b0"]:
        assert user.expand_term(iri) == iri


def test_compaction_reverses_expansion_under_the_same_context(user: TermMap) -> None:
    for name in ["speed", "Vehicle", "brand", "colour", "location"]:
        assert user.compact_iri(user.expand_term(name)) == name


def test_compaction_under_another_context_leaves_the_iri(core: TermMap) -> None:
    assert core.compact_iri(VOCAB + "speed") == VOCAB + "speed"
    assert core.compact_iri(DEFAULT_VOCAB + "colour") == "colour"
    assert core.compact_iri(NGSI_LD + "location") == "location"


def test_compaction_uses_a_prefix_when_no_term_applies(user: TermMap, core: TermMap) -> None:
    assert user.compact_iri(VOCAB + "colour") == "vx:colour"
    assert core.compact_iri(NGSI_LD + "notATerm") == "ngsi-ld:notATerm"


def test_compaction_prefers_the_shortest_then_first_term() -> None:
    iri = VOCAB + "speed"
    terms = RESOLVER.term_map({"speedometer": iri, "spd": iri, "aaa": iri, "speed": iri})
    assert terms.compact_iri(iri) == "aaa"
    assert {terms.expand_term(t) for t in ["speedometer", "spd", "aaa", "speed"]} == {iri}


def test_compaction_never_yields_a_name_meaning_something_else() -> None:
    shadowed = DEFAULT_VOCAB + "location"  # "location" is the core term, not this IRI
    compacted = RESOLVER.term_map(None).compact_iri(shadowed)
    assert compacted != "location"
    assert RESOLVER.term_map(None).expand_term(compacted) == shadowed


def test_core_terms_stay_protected_and_core_vocab_wins() -> None:
    terms = RESOLVER.term_map(
        {"location": "https://vocab.example.org/loc", "@vocab": "https://mine.example.org/"}
    )
    assert terms.expand_term("location") == NGSI_LD + "location"
    assert terms.expand_term("other") == DEFAULT_VOCAB + "other"


def test_vocab_property_values(user: TermMap) -> None:
    assert user.expand_vocab_value("Monday") == DEFAULT_VOCAB + "Monday"
    assert user.expand_vocab_value(["Vehicle", "vx:car"]) == [VOCAB + "Vehicle", VOCAB + "car"]
    assert user.compact_vocab_value([VOCAB + "Vehicle", DEFAULT_VOCAB + "Monday"]) == [
        "Vehicle",
        "Monday",
    ]
    with pytest.raises(BadRequestData):
        user.expand_vocab_value(["ok", 5])
    with pytest.raises(BadRequestData):
        user.compact_vocab_value({"not": "a name"})


def test_terms_mapped_to_null_and_empty_names_are_refused() -> None:
    terms = RESOLVER.term_map({"secret": None})
    with pytest.raises(BadRequestData, match="secret"):
        terms.expand_term("secret")
    with pytest.raises(BadRequestData):
        terms.expand_term("")


@given(NAMES)
def test_compact_after_expand_round_trips(name: str) -> None:
    for terms in (RESOLVER.term_map(USER), RESOLVER.term_map(None)):
        iri = terms.expand_term(name)
        assert terms.expand_term(terms.compact_iri(iri)) == iri


def test_expansion_agrees_with_pyld() -> None:
    names = [
        "speed", "Vehicle", "colour", "location", "vx:colour", "sdm:X", "ngsi-ld:foo",
        "urn:ngsi-ld:a:b", "https://other.example.org/p", "observedAt",
    ]  # fmt: skip
    document: dict[str, Any] = {"@context": [USER, CORE_CONTEXT_URL], "@id": "urn:x:1"}
    document.update(dict.fromkeys(names, "v"))
    expanded = pyld_jsonld.expand(document, {"documentLoader": DocumentLoader()})[0]
    terms = RESOLVER.term_map(USER)
    assert {terms.expand_term(name) for name in names} == set(expanded) - {"@id"}


def test_term_maps_are_cached_by_content() -> None:
    resolver = ContextResolver(DocumentLoader(), max_entries=2)
    first = resolver.term_map({"a": "https://a.example.org/a", "b": "https://a.example.org/b"})
    same = resolver.term_map({"b": "https://a.example.org/b", "a": "https://a.example.org/a"})
    assert first is same
    assert resolver.term_map(None) is resolver.term_map([CORE_CONTEXT_URL])
    assert resolver.term_map(None) is resolver.term_map(
        "http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld"
    )
    resolver.term_map({"c": "https://a.example.org/c"})  # evicts the least recently used
    again = resolver.term_map({"a": "https://a.example.org/a", "b": "https://a.example.org/b"})
    assert again is not first
    assert again.expand_term("a") == first.expand_term("a")


@pytest.mark.parametrize(
    "context",
    [
        {"speed": 5},
        {"@version": 2.0},
        [{"speed": {"@id": "https://a.example.org/s", "@container": "@nonsense"}}],
        ["relative/ctx.jsonld"],
        [5],
        42,
    ],
)
def test_invalid_contexts_are_bad_request_data(context: Any) -> None:
    with pytest.raises(BadRequestData):
        RESOLVER.term_map(context)


def test_an_unknown_context_url_is_not_available() -> None:
    url = "https://contexts.example.org/unknown.jsonld"
    with pytest.raises(LdContextNotAvailable, match=url.replace(".", r"\.")):
        RESOLVER.term_map([url, {"speed": VOCAB + "speed"}])


def test_past_the_memo_limit_answers_stay_right(monkeypatch: pytest.MonkeyPatch) -> None:
    terms = ContextResolver(DocumentLoader()).term_map(USER)
    monkeypatch.setattr(term_map, "MEMO_LIMIT", 0)
    for name in ["colour", "colour", "vx:car"]:
        assert terms.compact_iri(terms.expand_term(name)) == name
    assert terms.expand_term("speed") == VOCAB + "speed"
