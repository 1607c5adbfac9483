"""Which @context a request uses: Link header parsing and media-type rules (GS CIM 009 6.3.5)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.ngsild.errors import BadRequestData, InvalidRequest, UnsupportedMediaType
from cityhub.ngsild.jsonld import (
    JSONLD_CONTEXT_REL,
    link_header,
    media_type,
    parse_json_body,
    parse_link_header,
    request_context,
)

CTX = "https://contexts.example.org/ctx.jsonld"
LINK = f'<{CTX}>; rel="{JSONLD_CONTEXT_REL}"; type="application/ld+json"'
ENTITY = {"id": "urn:ngsi-ld:Vehicle:A1", "type": "Vehicle"}

URL_CHARS = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-._~/?#[]@!$&'()*+,;=%:")
URLS = st.builds(
    lambda host, path: f"https://{host}.example.org/{path}",
    st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True),
    st.text(URL_CHARS, max_size=40),
)
SPACE = st.sampled_from(["", " ", "  ", "\t"])
OTHER_LINKS = ['<https://x.example.org/n>; rel="next"', "<https://x.example.org/p>;rel=prev"]


def quoted(value: str, quote: bool) -> str:
    return f'"{value}"' if quote else value


@st.composite
def context_links(draw: st.DrawFn) -> tuple[str, str]:
    """A Link header with one JSON-LD context link among others, in assorted spellings."""
    url = draw(URLS)
    rel = draw(st.sampled_from([JSONLD_CONTEXT_REL, JSONLD_CONTEXT_REL.upper()]))
    quote_rel = draw(st.booleans()) or " " in rel
    if draw(st.booleans()):
        rel = f"alternate {rel}"
        quote_rel = True
    params = [f"rel{draw(SPACE)}={draw(SPACE)}{quoted(rel, quote_rel)}"]
    if draw(st.booleans()):
        params.append(f"type={quoted('application/ld+json', draw(st.booleans()))}")
    if draw(st.booleans()):
        params.append('title="a, quoted; \\"title\\""')
    params = draw(st.permutations(params))
    link = f"<{url}>" + "".join(f"{draw(SPACE)};{draw(SPACE)}{p}" for p in params)
    others = draw(st.lists(st.sampled_from(OTHER_LINKS), max_size=2))
    position = draw(st.integers(0, len(others)))
    links = [*others[:position], link, *others[position:]]
    separator = draw(st.sampled_from([",", ", ", " ,  "]))
    return draw(SPACE) + separator.join(links) + draw(SPACE), url


@given(context_links())
def test_the_context_url_is_found_in_any_spelling(case: tuple[str, str]) -> None:
    header, url = case
    assert parse_link_header(header) == url


@given(URLS)
def test_the_response_link_header_parses_back(url: str) -> None:
    assert parse_link_header(link_header(url)) == url


@given(st.text(max_size=60))
def test_arbitrary_headers_give_a_url_none_or_bad_request(header: str) -> None:
    try:
        result = parse_link_header(header)
    except BadRequestData:
        return
    assert result is None or "://" in result


def test_several_header_lines_may_be_given() -> None:
    assert parse_link_header(['<https://x.example.org/n>; rel="next"', LINK]) == CTX


@pytest.mark.parametrize("header", [None, "", "  ", '<https://x.example.org/n>; rel="next"'])
def test_no_context_link_means_none(header: str | None) -> None:
    assert parse_link_header(header) is None


@pytest.mark.parametrize(
    "header",
    [
        f"{LINK}, {LINK}",
        f'<ctx.jsonld>; rel="{JSONLD_CONTEXT_REL}"',
        f'<{CTX}; rel="{JSONLD_CONTEXT_REL}"',
        f'<{CTX}>; rel="{JSONLD_CONTEXT_REL}',
        f"{CTX}; rel={JSONLD_CONTEXT_REL}",
    ],
)
def test_malformed_or_ambiguous_links_are_bad_request_data(header: str) -> None:
    with pytest.raises(BadRequestData):
        parse_link_header(header)


def test_json_takes_the_link_header() -> None:
    assert request_context("application/json", LINK, ENTITY) == CTX
    assert request_context("application/json; charset=utf-8", None, ENTITY) is None
    assert request_context("application/merge-patch+json", LINK, ENTITY) == CTX


def test_json_payload_must_not_carry_a_context() -> None:
    with pytest.raises(BadRequestData, match="Link header"):
        request_context("application/json", None, {**ENTITY, "@context": CTX})
    with pytest.raises(BadRequestData):
        request_context("application/merge-patch+json", LINK, {"@context": CTX})


def test_json_ld_takes_the_payload_context() -> None:
    inline: dict[str, Any] = {"speed": "https://vocab.example.org/speed"}
    assert request_context("application/ld+json", None, {**ENTITY, "@context": [CTX, inline]}) == [
        CTX,
        inline,
    ]


@pytest.mark.parametrize(
    ("link", "body"),
    [
        (LINK, {**ENTITY, "@context": CTX}),  # both: not allowed
        (None, ENTITY),  # @context missing
        (None, [{**ENTITY, "@context": CTX}]),  # not an object: call per entity
        (None, {**ENTITY, "@context": 5}),
    ],
)
def test_json_ld_rules(link: str | None, body: object) -> None:
    with pytest.raises(BadRequestData):
        request_context("application/ld+json", link, body)


def test_requests_without_payload_use_the_link_header() -> None:
    assert request_context(None, LINK) == CTX
    assert request_context(None, None) is None


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
def test_other_media_types_are_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        request_context(content_type, None, ENTITY)


def test_media_type_and_json_body_helpers() -> None:
    assert media_type("Application/LD+JSON ; charset=UTF-8") == "application/ld+json"
    assert media_type(None) is None
    assert parse_json_body(b'{"a": 1}') == {"a": 1}
    with pytest.raises(InvalidRequest):
        parse_json_body(b"{nope")
