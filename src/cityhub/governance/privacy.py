"""Differentially private aggregates (count, sum, mean) per grid cell and time bucket (OpenDP).

The groups (cells of a public grid over a bounding box, times fixed-length buckets) come from
the query alone, never from the data, so which groups appear leaks nothing. Values are clamped
to the dataset's declared range [lo, hi]. Neighbouring data sets differ by one reading (event
level privacy): a count vector has L1 sensitivity 1, a sum vector max(|lo|, |hi|); both are
released through OpenDP's Laplace mechanism with scale sensitivity / epsilon. A mean spends
half of epsilon on the sum and half on the count and divides (post-processing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Statistic = Literal["count", "sum", "mean"]
MAX_GROUPS = 10_000


class PrivacyQueryError(ValueError):
    """A query that cannot be answered (too many groups, no declared range, bad bounds)."""


@dataclass(frozen=True, slots=True)
class Grid:
    """Square cells of `cell` degrees over [west, east) x [south, north)."""

    west: float
    south: float
    east: float
    north: float
    cell: float

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


@dataclass(frozen=True, slots=True)
class AggregateQuery:
    statistic: Statistic
    attribute: str  # expanded IRI
    epsilon: float
    grid: Grid
    start: datetime
    end: datetime
    bucket: timedelta

    @property
    def buckets(self) -> int:
        return max(1, math.ceil((self.end - self.start) / self.bucket - 1e-9))

    @property
    def groups(self) -> int:
        nx, ny = self.grid.shape
        return nx * ny * self.buckets

    def check(self) -> None:
        if not (self.grid.west < self.grid.east and self.grid.south < self.grid.north):
            raise PrivacyQueryError("bbox must be west,south,east,north with west < east and "
                                    "south < north")
        if self.end <= self.start:
            raise PrivacyQueryError("the time range is empty: end must be after start")
        if self.groups > MAX_GROUPS:
            raise PrivacyQueryError(f"the query asks for {self.groups} groups (cells x buckets); "
                                    f"at most {MAX_GROUPS} are answered")

    def group(self, lon: float, lat: float, at: float) -> int | None:
        cell = self.grid.index(lon, lat)
        offset = at - self.start.timestamp()
        if cell is None or offset < 0 or at >= self.end.timestamp():
            return None
        t = min(self.buckets - 1, int(offset // self.bucket.total_seconds()))
        nx, ny = self.grid.shape
        return (t * ny + cell[1]) * nx + cell[0]

    def describe(self, group: int) -> dict[str, Any]:
        nx, ny = self.grid.shape
        i, rest = group % nx, group // nx
        j, t = rest % ny, rest // ny
        begin = self.start + t * self.bucket
        return {"cell": [i, j], "bbox": self.grid.bbox(i, j),
                "start": _iso(begin), "end": _iso(min(self.end, begin + self.bucket))}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def exact(query: AggregateQuery, readings: Iterable[tuple[float, float, float, Any]],
          lo: float, hi: float) -> tuple[list[float], list[float]]:
    """True counts and clamped sums per group of (lon, lat, epoch, value) readings."""
    counts = [0.0] * query.groups
    sums = [0.0] * query.groups
    for lon, lat, at, value in readings:
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value):
            continue
        group = query.group(lon, lat, at)
        if group is None:
            continue
        counts[group] += 1.0
        sums[group] += min(hi, max(lo, float(value)))
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
    """The differentially private answer per group (None: a mean over no noisy readings)."""
    if query.statistic == "count":
        return [max(0.0, v) for v in _laplace(counts, 1.0, query.epsilon)]
    bound = max(abs(lo), abs(hi))
    if query.statistic == "sum":
        return list(_laplace(sums, bound, query.epsilon))
    noisy_sums = _laplace(sums, bound, query.epsilon / 2)
    noisy_counts = _laplace(counts, 1.0, query.epsilon / 2)
    return [min(hi, max(lo, s / c)) if c >= 1.0 else None
            for s, c in zip(noisy_sums, noisy_counts, strict=True)]
