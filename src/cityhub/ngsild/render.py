"""Render internal entities in the response forms: normalized, concise and keyValues (simplified).

Attribute names and types are compacted with the request's @context; `attrs`/`pick`/`omit`
select what is shown; `sysAttrs` adds createdAt/modifiedAt; `lang` picks one language.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from cityhub.ngsild.model import VALUE_MEMBER, Entity, Instance
from cityhub.ngsild.terms import Terms

Form = Literal["normalized", "concise", "keyValues"]
_SYSTEM = ("createdAt", "modifiedAt")


@dataclass(frozen=True)
class RenderOptions:
    """How to show an entity; `attrs` and `omit` hold expanded attribute IRIs."""

    form: Form = "normalized"
    sys_attrs: bool = False
    attrs: Collection[str] | None = None
    omit: Collection[str] = ()
    lang: str | None = None
    show_id: bool = True
    show_type: bool = True


def render_entity(entity: Entity, terms: Terms, options: RenderOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if options.show_id:
        out["id"] = entity["id"]
    if options.show_type:
        types = [terms.compact_iri(t) for t in entity.get("type", [])]
        out["type"] = types[0] if len(types) == 1 else types
    if "scope" in entity:
        scopes = entity["scope"]
        out["scope"] = scopes[0] if len(scopes) == 1 else scopes
    if options.sys_attrs and options.form != "keyValues":
        for member in _SYSTEM:
            if member in entity:
                out[member] = entity[member]
    for iri, instances in entity["attrs"].items():
        if options.attrs is not None and iri not in options.attrs:
            continue
        if iri in options.omit:
            continue
        rendered = [render_instance(inst, terms, options) for inst in instances]
        out[terms.compact_iri(iri)] = rendered[0] if len(rendered) == 1 else rendered
    return out


def render_instance(instance: Instance, terms: Terms, options: RenderOptions) -> Any:
    kind = instance["type"]
    member = VALUE_MEMBER[kind]
    value = instance[member]
    if kind == "VocabProperty":
        value = [terms.compact_iri(v) for v in value] if isinstance(value, list) else (
            terms.compact_iri(value)
        )
    if kind == "LanguageProperty" and options.lang is not None:
        kind, member, value = "Property", "value", _pick_language(value, options.lang)
    if options.form == "keyValues":
        return value
    out: dict[str, Any] = {}
    if options.form == "normalized" or (kind == "GeoProperty" and not isinstance(value, dict)):
        out["type"] = kind
    out[member] = value
    if kind == "Property" and options.lang is not None and "lang" in instance:
        out["lang"] = instance["lang"]
    for key in ("observedAt", "unitCode", "datasetId", "objectType"):
        if key in instance:
            out[key] = instance[key]
    if options.sys_attrs:
        for key in _SYSTEM:
            if key in instance:
                out[key] = instance[key]
    for sub_iri, sub in instance.get("sub", {}).items():
        out[terms.compact_iri(sub_iri)] = render_instance(sub, terms, options)
    bare_ok = kind == "GeoProperty" or (kind == "Property" and not isinstance(value, dict))
    if options.form == "concise" and len(out) == 1 and bare_ok:
        return value  # a bare value needs no wrapper in the concise form
    return out


def _pick_language(language_map: dict[str, Any], lang: str) -> Any:
    if lang in language_map:
        return language_map[lang]
    if lang == "*":
        return language_map
    if "@none" in language_map:
        return language_map["@none"]
    return next(iter(language_map.values()), None)
