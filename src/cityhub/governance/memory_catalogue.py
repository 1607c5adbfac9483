"""An in-memory `Catalogue` read from a TOML file: the embedded default and the tests' catalogue.

The stored catalogue (the catalogue service) replaces it in a full deployment; both answer the
same `Catalogue` protocol. The file also declares the named areas (districts) private
aggregates are grouped by. Short names (`AirQualityObserved`, `pm25`) expand to the NGSI-LD
default vocabulary, as everything cityhub publishes does (docs/data-model.md).
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from cityhub.governance.datasets import Dataset, Tier
from cityhub.governance.privacy import Area, parse_areas
from cityhub.ngsild.model import DEFAULT_VOCAB, GEO_ATTRIBUTES

_CORE = {iri.rsplit("/", 1)[-1]: iri for iri in GEO_ATTRIBUTES}


def expand_name(name: str) -> str:
    """A short name as the core context expands it (`location` is a core term)."""
    if ":" in name:
        return name
    return _CORE.get(name, DEFAULT_VOCAB + name)


class MemoryCatalogue:
    """Datasets held in a dict keyed by (tenant, id)."""

    def __init__(self, datasets: list[Dataset]) -> None:
        self._by_key = {(d.tenant, d.id): d for d in datasets}

    def get(self, dataset_id: str, tenant: str = "") -> Dataset | None:
        return self._by_key.get((tenant, dataset_id))

    def datasets(self, tenant: str = "") -> list[Dataset]:
        return sorted((d for (t, _), d in self._by_key.items() if t == tenant),
                      key=lambda d: d.id)

    @classmethod
    def from_toml(cls, text: str) -> MemoryCatalogue:
        """`[[dataset]]` tables: id, title, type, owner, tier, and optionally scope,
        description, frequency_s, licence, tenant, attributes (list), ranges (table of
        [min, max])."""
        return cls([_dataset(entry) for entry in tomllib.loads(text).get("dataset", [])])

    @classmethod
    def load(cls, path: Path | None) -> MemoryCatalogue:
        """The file at `path`, or the district's default catalogue shipped with cityhub."""
        return cls.from_toml(_text(path))


def _text(path: Path | None) -> str:
    if path is None:
        return resources.files("cityhub.governance").joinpath(
            "data/datasets.toml").read_text(encoding="utf-8")
    return path.read_text(encoding="utf-8")


def load_areas(path: Path | None) -> list[Area]:
    """The named areas (`[[area]]` tables) of the catalogue file at `path`, or of the
    district's default catalogue."""
    return parse_areas(tomllib.loads(_text(path)).get("area", []))


def _dataset(entry: dict[str, Any]) -> Dataset:
    frequency = entry.get("frequency_s")
    return Dataset(
        id=str(entry["id"]),
        title=str(entry.get("title", entry["id"])),
        entity_type=expand_name(str(entry["type"])),
        owner=str(entry.get("owner", "")),
        tier=Tier(entry.get("tier", "public")),
        scope=entry.get("scope"),
        description=str(entry.get("description", "")),
        update_frequency=timedelta(seconds=float(frequency)) if frequency else None,
        licence=entry.get("licence"),
        tenant=str(entry.get("tenant", "")),
        attributes=tuple(expand_name(str(a)) for a in entry.get("attributes", [])),
        ranges={expand_name(k): (float(v[0]), float(v[1]))
                for k, v in entry.get("ranges", {}).items()},
    )
