"""What a dataset is: an entity type plus a scope, owned by a department, with a tier.

The catalogue stores these; policy decisions, sharing grants, privacy budgets and quality scores
are all keyed by a dataset's id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Protocol


class Tier(StrEnum):
    """Classification tiers, least to most protected (seed 7.1: tiered authorisation)."""

    PUBLIC = "public"
    INTERNAL = "internal"
    SENSITIVE = "sensitive"
    CORE = "core"


@dataclass(frozen=True, slots=True)
class Dataset:
    """A catalogued dataset.

    `entity_type` is the expanded type IRI; `scope` an NGSI-LD scope prefix (None: any scope).
    `attributes` lists the expanded attribute IRIs the dataset declares (empty: any).
    `ranges` holds the declared valid [min, max] per numeric attribute (for data quality).
    """

    id: str
    title: str
    entity_type: str
    owner: str
    tier: Tier
    scope: str | None = None
    description: str = ""
    update_frequency: timedelta | None = None
    licence: str | None = None
    tenant: str = ""
    attributes: tuple[str, ...] = ()
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


class Catalogue(Protocol):
    """Read access to the catalogued datasets (the stored catalogue implements it)."""

    def get(self, dataset_id: str, tenant: str = "") -> Dataset | None: ...

    def datasets(self, tenant: str = "") -> list[Dataset]: ...
