"""Data export of a dataset as CSV, GeoJSON or NGSI-LD JSON-LD, rendered as a stream of text
chunks from the (already guarded and minimised) entities.

Rendering never looks at anything but the entities it is given: what they hold is what the
reader may see (see `cityhub.governance.guard`). CSV has one row per entity with the entity's
id, type, longitude and latitude and one column per attribute of the dataset's declared list
that the reader may see (the header is fixed before the first row, from `columns`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import orjson

from cityhub.governance.observations import point
from cityhub.ngsild.model import CORE_CONTEXT_URL, LOCATION, VALUE_MEMBER, Entity
from cityhub.ngsild.render import RenderOptions, render_entity
from cityhub.ngsild.terms import Terms

Format = Literal["csv", "geojson", "jsonld"]
MEDIA_TYPES: dict[str, str] = {"csv": "text/csv; charset=utf-8",
                               "geojson": "application/geo+json",
                               "jsonld": "application/ld+json"}


def _value(entity: Entity, iri: str) -> Any:
    instances = entity["attrs"].get(iri) or []
    if not instances:
        return None
    instance = instances[0]
    return instance.get(VALUE_MEMBER.get(instance.get("type", "Property"), "value"))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is prefixed with `'`.

    Devices and citizens write these values, so `=HYPERLINK(...)` must stay text. Numbers
    (negative ones too) are written as they are.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    return orjson.dumps(value).decode()


def csv_rows(entities: Iterable[Entity], columns: list[str], terms: Terms) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180; quotes a lone CR too

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(["id", "type", "longitude", "latitude",
                     *(terms.compact_iri(c) for c in columns)])
    yield flush()
    for entity in entities:
        where = point(entity)
        types = [terms.compact_iri(t) for t in entity.get("type", [])]
        writer.writerow([entity["id"], " ".join(types),
                         "" if where is None else where[0], "" if where is None else where[1],
                         *(_cell(_value(entity, c)) for c in columns)])
        yield flush()


def _feature(entity: Entity, terms: Terms) -> dict[str, Any]:
    geometry = None
    properties: dict[str, Any] = {"type": " ".join(terms.compact_iri(t)
                                                   for t in entity.get("type", []))}
    for iri in entity["attrs"]:
        if iri == LOCATION:
            geometry = _value(entity, iri)
        else:
            properties[terms.compact_iri(iri)] = _value(entity, iri)
    return {"type": "Feature", "id": entity["id"], "geometry": geometry,
            "properties": properties}


def _array(items: Iterable[Entity], head: str, tail: str,
           render: Callable[[Entity], Any]) -> Iterator[str]:
    yield head
    for n, entity in enumerate(items):
        yield ("," if n else "") + orjson.dumps(render(entity)).decode()
    yield tail


def geojson_chunks(entities: Iterable[Entity], terms: Terms) -> Iterator[str]:
    return _array(entities, '{"type":"FeatureCollection","features":[', "]}",
                  lambda e: _feature(e, terms))


def jsonld_chunks(entities: Iterable[Entity], terms: Terms) -> Iterator[str]:
    options = RenderOptions()
    return _array(entities, "[", "]",
                  lambda e: {**render_entity(e, terms, options), "@context": CORE_CONTEXT_URL})


def render(form: Format, entities: Iterable[Entity], columns: list[str],
           terms: Terms) -> Iterator[str]:
    if form == "csv":
        return csv_rows(entities, columns, terms)
    if form == "geojson":
        return geojson_chunks(entities, terms)
    return jsonld_chunks(entities, terms)
