"""Differentially private aggregates (count, sum, mean) per area and time bucket (OpenDP).

**Privacy unit: one device.** Two data sets are neighbours when they differ in all the
readings of one device (an entity's `refDevice`, else the entity itself). Contribution
bounding makes that finite: each device contributes at most `k` readings to each time bucket
(evenly spaced among its readings there, a choice that depends on that device's data alone),
and a device sits in one place (its entity's location), so it touches at most one area per
bucket. Adding or removing a device thus changes the count vector by at most `k * buckets`
in L1 norm, and the clamped sum vector by at most `k * buckets * max(|lo|, |hi|)`. Both are
released through OpenDP's Laplace mechanism with scale = sensitivity / epsilon, and OpenDP's
privacy map checks that the release costs no more than the epsilon charged. A mean spends
half of epsilon on the sum and half on the count and divides (post-processing).

The groups (cells of a public grid over a bounding box, or named areas declared in the
catalogue file; times fixed-length buckets) come from the query and the catalogue alone,
never from the data, so which groups appear leaks nothing.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from shapely.geometry import Point, Polygon
from shapely.prepared import PreparedGeometry, prep

Statistic = Literal["count", "sum", "mean"]
MAX_GROUPS = 10_000
MAX_CONTRIBUTIONS = 1_000
MIN_MEAN_COUNT = 0.5


class PrivacyQueryError(ValueError):
    """A query that cannot be answered (too many groups, no declared range, bad bounds)."""


class Space(Protocol):
    """Where readings are grouped: `size` places, each reading's place by position."""

    @property
    def size(self) -> int: ...

    def place(self, lon: float, lat: float) -> int | None: ...

    def describe(self, place: int) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Grid:
    """Square cells of `cell` degrees over [west, east) x [south, north)."""

    west: float
    south: float
    east: float
    north: float
    cell: float

    def __post_init__(self) -> None:
        if not (self.west < self.east and self.south < self.north):
            raise PrivacyQueryError("bbox must be west,south,east,north with west < east and "
                                    "south < north")

    @property
    def shape(self) -> tuple[int, int]:
        return (max(1, math.ceil((self.east - self.west) / self.cell - 1e-9)),
                max(1, math.ceil((self.north - self.south) / self.cell - 1e-9)))

    def index(self, lon: float, lat: float) -> tuple[int, int] | None:
        if not (self.west <= lon < self.east and self.south <= lat < self.north):
            return None
        nx, ny = self.shape
        return (min(nx - 1, int((lon - self.west) / self.cell)),
                min(ny - 1, int((lat - self.south) / self.cell)))

    def bbox(self, i: int, j: int) -> list[float]:
        return [self.west + i * self.cell, self.south + j * self.cell,
                min(self.east, self.west + (i + 1) * self.cell),
                min(self.north, self.south + (j + 1) * self.cell)]

    @property
    def size(self) -> int:
        nx, ny = self.shape
        return nx * ny

    def place(self, lon: float, lat: float) -> int | None:
        cell = self.index(lon, lat)
        return None if cell is None else cell[1] * self.shape[0] + cell[0]

    def describe(self, place: int) -> dict[str, Any]:
        i, j = place % self.shape[0], place // self.shape[0]
        return {"cell": [i, j], "bbox": self.bbox(i, j)}


@dataclass(frozen=True)
class Area:
    """A named area (a district): a polygon of (longitude, latitude) positions."""

    id: str
    name: str
    polygon: Polygon


class Areas:
    """Named areas as groups; a position belongs to the first area (in declaration order)
    that covers it, so overlapping declarations never count a device twice."""

    def __init__(self, areas: Sequence[Area]) -> None:
        self.areas = list(areas)
        self._prepared: list[PreparedGeometry] = [prep(a.polygon) for a in self.areas]

    @property
    def size(self) -> int:
        return len(self.areas)

    def place(self, lon: float, lat: float) -> int | None:
        where = Point(lon, lat)
        return next((n for n, shape in enumerate(self._prepared) if shape.covers(where)), None)

    def describe(self, place: int) -> dict[str, Any]:
        area = self.areas[place]
        return {"area": area.id, "name": area.name}


def parse_areas(entries: Iterable[dict[str, Any]]) -> list[Area]:
    """`[[area]]` tables of the catalogue file: id, name, polygon = [[lon, lat], ...]."""
    areas: list[Area] = []
    for entry in entries:
        try:
            ring = [(float(lon), float(lat)) for lon, lat in entry["polygon"]]
            area = Area(str(entry["id"]), str(entry.get("name", entry["id"])), Polygon(ring))
        except (KeyError, TypeError, ValueError) as error:
            raise PrivacyQueryError(f"area {entry.get('id')!r}: {error}") from None
        if not area.polygon.is_valid or area.polygon.area == 0:
            raise PrivacyQueryError(f"area {area.id!r}: the polygon is not a valid area")
        if any(a.id == area.id for a in areas):
            raise PrivacyQueryError(f"area {area.id!r} is declared twice")
        areas.append(area)
    return areas


@dataclass(frozen=True, slots=True)
class AggregateQuery:
    statistic: Statistic
    attribute: str  # expanded IRI
    epsilon: float
    space: Space
    start: datetime
    end: datetime
    bucket: timedelta
    contributions: int = 10  # k: readings per device and bucket

    @property
    def buckets(self) -> int:
        return max(1, math.ceil((self.end - self.start) / self.bucket - 1e-9))

    @property
    def groups(self) -> int:
        return self.space.size * self.buckets

    @property
    def count_sensitivity(self) -> float:
        """L1 change of the count vector when one device is added or removed."""
        return float(self.contributions * self.buckets)

    def sum_sensitivity(self, lo: float, hi: float) -> float:
        return self.count_sensitivity * max(abs(lo), abs(hi))

    def check(self) -> None:
        if self.space.size == 0:
            raise PrivacyQueryError("the query names no area")
        if self.end <= self.start:
            raise PrivacyQueryError("the time range is empty: end must be after start")
        if not 1 <= self.contributions <= MAX_CONTRIBUTIONS:
            raise PrivacyQueryError(f"contributions must be 1..{MAX_CONTRIBUTIONS}")
        if self.groups > MAX_GROUPS:
            raise PrivacyQueryError(f"the query asks for {self.groups} groups (areas x "
                                    f"buckets); at most {MAX_GROUPS} are answered")

    def group(self, place: int, at: float) -> int | None:
        offset = at - self.start.timestamp()
        if offset < 0 or at >= self.end.timestamp():
            return None
        t = min(self.buckets - 1, int(offset // self.bucket.total_seconds()))
        return t * self.space.size + place

    def describe(self, group: int) -> dict[str, Any]:
        place, t = group % self.space.size, group // self.space.size
        begin = self.start + t * self.bucket
        return {**self.space.describe(place),
                "start": _iso(begin), "end": _iso(min(self.end, begin + self.bucket))}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _spread(values: list[float], k: int) -> list[float]:
    """At most k of a device's values in one bucket, evenly spaced among them."""
    if len(values) <= k:
        return values
    step = len(values) / k
    return [values[int(n * step)] for n in range(k)]


def exact(query: AggregateQuery,
          readings: Iterable[tuple[str, float, float, float, Any]],
          lo: float, hi: float) -> tuple[list[float], list[float]]:
    """Contribution-bounded counts and clamped sums per group of (device, lon, lat, epoch,
    value) readings: each device gives at most `query.contributions` readings to a group."""
    place_of: dict[str, int | None] = {}
    per_device: dict[tuple[str, int], list[float]] = defaultdict(list)
    for device, lon, lat, at, value in readings:
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value):
            continue
        if device not in place_of:  # a device sits in one place: where it was first seen
            place_of[device] = query.space.place(lon, lat)
        place = place_of[device]
        group = None if place is None else query.group(place, at)
        if group is not None:
            per_device[(device, group)].append(min(hi, max(lo, float(value))))
    counts = [0.0] * query.groups
    sums = [0.0] * query.groups
    for (_, group), values in per_device.items():
        kept = _spread(values, query.contributions)
        counts[group] += len(kept)
        sums[group] += sum(kept)
    return counts, sums


def _laplace(values: list[float], sensitivity: float, epsilon: float) -> list[float]:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    if sensitivity == 0:
        return list(values)
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float),
        scale=sensitivity / epsilon)
    if measurement.map(sensitivity) > epsilon * (1 + 1e-9):  # type: ignore[no-untyped-call]
        raise PrivacyQueryError("the Laplace mechanism would exceed the asked epsilon")
    noisy: list[float] = measurement(values)
    return noisy


def release(query: AggregateQuery, counts: list[float], sums: list[float], lo: float,
            hi: float) -> list[float | None]:
    """The differentially private answer per group (None: a mean whose noisy count is below
    half a reading, which would divide by noise; post-processing, so any threshold is safe)."""
    count_sensitivity = query.count_sensitivity
    if query.statistic == "count":
        return [max(0.0, v) for v in _laplace(counts, count_sensitivity, query.epsilon)]
    sum_sensitivity = query.sum_sensitivity(lo, hi)
    if query.statistic == "sum":
        return list(_laplace(sums, sum_sensitivity, query.epsilon))
    noisy_sums = _laplace(sums, sum_sensitivity, query.epsilon / 2)
    noisy_counts = _laplace(counts, count_sensitivity, query.epsilon / 2)
    return [min(hi, max(lo, s / c)) if c >= MIN_MEAN_COUNT else None
            for s, c in zip(noisy_sums, noisy_counts, strict=True)]
