"""The broker's internal form of an entity: NGSI-LD normalized, with every term expanded to an IRI.

Every store, the query evaluator and the renderers share this one shape, so a request's
@context matters only at the edges (parsing a payload, rendering a response):

    Entity = {
        "id": "urn:ngsi-ld:Vehicle:A1",
        "type": ["https://uri.etsi.org/ngsi-ld/default-context/Vehicle"],   # expanded, sorted
        "scope": ["/Madrid/Centro"],                                          # optional
        "createdAt": "2026-01-01T00:00:00.000000Z",                          # set by the store
        "modifiedAt": "2026-01-01T00:00:00.000000Z",
        "attrs": {
            "https://uri.etsi.org/ngsi-ld/default-context/speed": [Instance, ...],
        },
    }

    Instance = {
        "type": "Property" | "Relationship" | "GeoProperty" | "LanguageProperty"
                | "ListProperty" | "ListRelationship" | "VocabProperty" | "JsonProperty",
        "value": ...            # Property, GeoProperty (a GeoJSON geometry)
        "object": "urn:..."     # Relationship (or a list of URIs)
        "languageMap": {...}    # LanguageProperty
        "valueList": [...]      # ListProperty
        "objectList": [...]     # ListRelationship
        "vocab": "IRI" | [...]  # VocabProperty (values expanded like terms)
        "json": ...             # JsonProperty (never expanded)
        "observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "instanceId": str
        "sub": {"<sub-attribute IRI>": Instance},   # sub-attributes, expanded names
    }

An attribute maps to a list of instances because NGSI-LD allows several instances of one
attribute told apart by `datasetId`; the default instance has no `datasetId`.
Values inside `value` are kept as sent (their keys are not expanded), as Orion-LD does.
"""

from __future__ import annotations

from typing import Any

NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"

LOCATION = NGSI_LD + "location"
OBSERVATION_SPACE = NGSI_LD + "observationSpace"
OPERATION_SPACE = NGSI_LD + "operationSpace"
GEO_ATTRIBUTES = frozenset({LOCATION, OBSERVATION_SPACE, OPERATION_SPACE})

ATTRIBUTE_TYPES = frozenset(
    {
        "Property",
        "Relationship",
        "GeoProperty",
        "LanguageProperty",
        "ListProperty",
        "ListRelationship",
        "VocabProperty",
        "JsonProperty",
    }
)

# Which member carries an attribute's value, per attribute type.
VALUE_MEMBER = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
}

# Members of an attribute instance that are core NGSI-LD terms, never expanded.
INSTANCE_CORE_MEMBERS = frozenset(
    {
        "type",
        "value",
        "object",
        "languageMap",
        "valueList",
        "objectList",
        "vocab",
        "json",
        "observedAt",
        "unitCode",
        "datasetId",
        "createdAt",
        "modifiedAt",
        "instanceId",
        "objectType",
        "lang",
        "deletedAt",
    }
)

# Entity members that are not attributes.
ENTITY_CORE_MEMBERS = frozenset({"id", "@id", "type", "@type", "scope", "createdAt", "modifiedAt",
                                 "deletedAt", "@context"})

Entity = dict[str, Any]
Instance = dict[str, Any]
