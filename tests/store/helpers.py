"""Helpers of the store suites: a tiny @context stand-in so that payloads parse without the
JSON-LD stack, a clock the test moves by hand, and request-style query building."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cityhub.ngsild.geoquery import GeoQuery
from cityhub.ngsild.model import DEFAULT_VOCAB, NGSI_LD, Entity, Instance
from cityhub.ngsild.payload import format_datetime, parse_attributes, parse_entity
from cityhub.ngsild.query import expand, parse_q, parse_scope_q, parse_type_expr
from cityhub.store.port import EntityQuery
from cityhub.store.sql import SqlStore

CORE_TERMS = frozenset({"location", "observationSpace", "operationSpace"})


class Terms:
    """Expands a term to the default vocabulary (the core geo terms to the NGSI-LD namespace),
    as the core @context does; anything with a colon is already an IRI."""

    def expand_term(self, term: str) -> str:
        if ":" in term:
            return term
        return (NGSI_LD if term in CORE_TERMS else DEFAULT_VOCAB) + term

    def compact_iri(self, iri: str) -> str:
        for base in (DEFAULT_VOCAB, NGSI_LD):
            if iri.startswith(base):
                return iri.removeprefix(base)
        return iri


TERMS = Terms()


def iri(term: str) -> str:
    return TERMS.expand_term(term)


def entity(body: dict[str, Any], **kwargs: Any) -> Entity:
    """A payload in terms (normalized or concise) -> the internal form."""
    return parse_entity(body, TERMS, **kwargs)


def attrs(body: dict[str, Any], **kwargs: Any) -> dict[str, list[Instance]]:
    return parse_attributes(body, TERMS, **kwargs)


class Clock:
    """A clock the test moves by hand: each `tick` is one second."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> str:
        self.now += timedelta(seconds=seconds)
        return self.text

    @property
    def text(self) -> str:
        return format_datetime(self.now)


def query(
    *,
    type_: str | None = None,
    q: str | None = None,
    scope: str | None = None,
    attrs_any: tuple[str, ...] | None = None,
    ids: tuple[str, ...] | None = None,
    id_pattern: str | None = None,
    geo: GeoQuery | None = None,
    limit: int = 20,
    offset: int = 0,
    count: bool = False,
) -> EntityQuery:
    """An `EntityQuery` from request-style text, expanded with `TERMS` as the API does."""
    return EntityQuery(
        ids=ids,
        id_pattern=id_pattern,
        types=expand(parse_type_expr(type_), TERMS.expand_term) if type_ else None,
        q=expand(parse_q(q), TERMS.expand_term) if q else None,
        scope=parse_scope_q(scope) if scope else None,
        attrs_any=tuple(iri(a) for a in attrs_any) if attrs_any else None,
        geo=geo.with_property(iri(geo.geoproperty)) if geo else None,
        geo_property=iri(geo.geoproperty) if geo else None,
        limit=limit,
        offset=offset,
        count=count,
    )


def vehicle(n: int = 1, speed: float = 50.0, **extra: Any) -> Entity:
    """A Vehicle with a few attribute kinds, internal form."""
    return entity({
        "id": f"urn:ngsi-ld:Vehicle:{n}",
        "type": "Vehicle",
        "speed": {"type": "Property", "value": speed, "unitCode": "KMH"},
        "brandName": "Mercedes",
        "isParked": {"type": "Relationship", "object": "urn:ngsi-ld:Parking:1"},
        "location": {"type": "Point", "coordinates": [-3.70 + n / 1000, 40.41]},
        **extra,
    })


def history(store: SqlStore, tenant: str, entity_id: str) -> list[tuple[str, str, int, Instance]]:
    """The `attr_history` rows of one entity, oldest first: (attr IRI, datasetId, deleted,
    instance)."""
    with store.db.transaction(write=False) as conn:
        rows = conn.execute(
            "SELECT attr, dataset_id, deleted, instance FROM attr_history "
            "WHERE tenant = ? AND entity_id = ? ORDER BY hid",
            (tenant, entity_id),
        ).fetchall()
    return [(attr, dataset_id, int(deleted), orjson.loads(inst))
            for attr, dataset_id, deleted, inst in rows]


def rows_in(store: SqlStore, table: str, tenant: str) -> int:
    """How many rows of a tenant a store table holds (entities, attr_index, geo_index, ...)."""
    with store.db.transaction(write=False) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {table} WHERE tenant = ?",  # noqa: S608 - fixed table names
            (tenant,),
        ).fetchone()
    return int(row[0])
