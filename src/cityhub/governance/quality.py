"""Data quality of catalogued datasets, scored 0..1 per dimension from the stored data.

completeness - the share of (entity, declared attribute) pairs present;
timeliness   - the share of entities updated within twice the declared frequency;
validity     - schema: the share of declared attributes present in the form their kind needs
               (a location is a GeoProperty holding a geometry, a range-declared attribute a
               Property); ranges: the share of recent readings of range-declared attributes
               that are numbers inside the declared range;
consistency  - the share of checks passed: observedAt not in the future, no two different
               values observed at one instant, one unit per attribute.
A dataset passes when the mean of its four scores reaches the bar (CITYHUB_QUALITY_BAR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from shapely.errors import GEOSException
from shapely.geometry import shape

from cityhub.governance import observations
from cityhub.governance.datasets import Dataset
from cityhub.ngsild.model import GEO_ATTRIBUTES, LOCATION, Instance
from cityhub.store.port import Store
from cityhub.store.temporal import TemporalStore

RECENT = 200  # readings per entity and attribute that validity and consistency look at
FUTURE_SKEW_S = 60.0
LATE_FACTOR = 2.0


@dataclass(frozen=True, slots=True)
class QualityScore:
    dataset: str
    entities: int
    completeness: float
    timeliness: float
    validity: float
    consistency: float
    bar: float

    @property
    def overall(self) -> float:
        return (self.completeness + self.timeliness + self.validity + self.consistency) / 4

    @property
    def passed(self) -> bool:
        return self.overall >= self.bar

    def as_dict(self) -> dict[str, object]:
        return {"dataset": self.dataset, "entities": self.entities,
                "completeness": round(self.completeness, 4),
                "timeliness": round(self.timeliness, 4), "validity": round(self.validity, 4),
                "consistency": round(self.consistency, 4), "overall": round(self.overall, 4),
                "passed": self.passed}


class _Tally:
    def __init__(self) -> None:
        self.good = 0
        self.total = 0

    def add(self, ok: bool) -> None:
        self.good += ok
        self.total += 1

    def score(self) -> float:
        return self.good / self.total if self.total else 1.0


def score(store: Store, temporal: TemporalStore, dataset: Dataset, now: datetime,
          bar: float) -> QualityScore:
    """Score one dataset (no entities at all scores 0 on every dimension)."""
    completeness, timeliness, validity, consistency = _Tally(), _Tally(), _Tally(), _Tally()
    count = 0
    checked = set(dataset.attributes) | set(dataset.ranges)
    checked.discard(LOCATION)
    schema = (set(dataset.attributes) & GEO_ATTRIBUTES) | set(dataset.ranges)
    for entity in observations.entities(store, dataset):
        count += 1
        attrs = entity.get("attrs", {})
        for iri in dataset.attributes:
            completeness.add(bool(attrs.get(iri)))
        for iri in schema:
            if attrs.get(iri):
                validity.add(_well_formed(iri, attrs[iri]))
        latest = -math.inf
        for iri in sorted(checked):
            series = observations.readings(temporal, dataset.tenant, entity, iri, last_n=RECENT)
            if not series:
                continue
            latest = max(latest, series[-1].at)
            _check(series, dataset.ranges.get(iri), now.timestamp(), validity, consistency)
        if dataset.update_frequency is not None:
            limit = dataset.update_frequency.total_seconds() * LATE_FACTOR
            timeliness.add(now.timestamp() - latest <= limit)
    if count == 0:
        return QualityScore(dataset.id, 0, 0.0, 0.0, 0.0, 0.0, bar)
    return QualityScore(dataset.id, count, completeness.score(), timeliness.score(),
                        validity.score(), consistency.score(), bar)


def _well_formed(iri: str, instances: list[Instance]) -> bool:
    """The attribute's schema: geo attributes are GeoProperties with a geometry, attributes
    with a declared range are Properties (their values are checked per reading)."""
    if iri in GEO_ATTRIBUTES:
        return all(i.get("type") == "GeoProperty" and _geometry(i.get("value"))
                   for i in instances)
    return all(i.get("type") == "Property" for i in instances)


def _geometry(value: object) -> bool:
    try:
        return not shape(value).is_empty
    except (ValueError, TypeError, AttributeError, KeyError, GEOSException):
        return False


def _check(series: list[observations.Reading], bounds: tuple[float, float] | None, now: float,
           validity: _Tally, consistency: _Tally) -> None:
    unit = series[0].unit
    for before, reading in zip([None, *series], series, strict=False):
        if bounds is not None:
            value = reading.value
            number = isinstance(value, int | float) and not isinstance(value, bool)
            validity.add(number and math.isfinite(value) and
                         bounds[0] <= value <= bounds[1])
        consistency.add(reading.at <= now + FUTURE_SKEW_S)
        consistency.add(reading.unit == unit)
        if before is not None:
            consistency.add(before.at != reading.at or before.value == reading.value)


def share_passing(scores: list[QualityScore]) -> float:
    return sum(s.passed for s in scores) / len(scores) if scores else 0.0
