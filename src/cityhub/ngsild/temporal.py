"""The temporal evolution of entities (ETSI GS CIM 009 §4.5.x, §5.6.x, §6.18-6.24), pure parts:
temporal query parameters (timerel, lastN, aggregation), ISO 8601 durations, the reference
aggregation of attribute values, and the three temporal representations (normalized,
temporalValues, aggregatedValues). The store reads the history; this module says what it means.
"""

from __future__ import annotations

import bisect
import calendar
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.model import VALUE_MEMBER, Entity, Instance
from cityhub.ngsild.payload import (
    NULL,
    check_entity_id,
    check_name,
    expand_types,
    format_datetime,
    parse_attribute,
    parse_datetime,
    parse_scope,
)
from cityhub.ngsild.render import RenderOptions, render_instance
from cityhub.ngsild.terms import Terms

Representation = Literal["normalized", "temporalValues", "aggregatedValues"]
TIMERELS = ("before", "after", "between")
TIME_PROPERTIES = ("observedAt", "modifiedAt", "createdAt", "deletedAt")
AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
INSTANCE_PREFIX = "urn:ngsi-ld:attribute-instance:"
_REPRESENTATIONS: dict[str, Representation] = {
    "normalized": "normalized",
    "temporalValues": "temporalValues",
    "simplified": "temporalValues",
    "keyValues": "temporalValues",
    "aggregatedValues": "aggregatedValues",
}
_OPTIONS = frozenset({*_REPRESENTATIONS, "sysAttrs"})
_LAST_EPOCH = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
# The member holding an attribute's values in the simplified (temporalValues) form, per type.
VALUES_MEMBER = {
    "Property": "values",
    "GeoProperty": "values",
    "Relationship": "objects",
    "LanguageProperty": "languageMaps",
    "ListProperty": "valueLists",
    "ListRelationship": "objectLists",
    "VocabProperty": "vocabs",
    "JsonProperty": "jsons",
}
_DURATION = re.compile(
    r"P(?:(?P<Y>\d+)Y)?(?:(?P<M>\d+)M)?(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:[.,]\d+)?)S)?)?"
)


# -- durations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Duration:
    """An ISO 8601 duration split into calendar months (years count 12) and exact seconds."""

    months: int = 0
    seconds: float = 0.0

    @property
    def is_zero(self) -> bool:
        return self.months == 0 and self.seconds == 0

    def times(self, start: datetime, k: int) -> datetime:
        """`start` plus k times this duration (months first, clamped to the month's last day)."""
        moment = start
        try:
            if self.months:
                total = moment.month - 1 + self.months * k
                year, month = moment.year + total // 12, total % 12 + 1
                day = min(moment.day, calendar.monthrange(year, month)[1])
                moment = moment.replace(year=year, month=month, day=day)
            return moment + timedelta(seconds=self.seconds * k)
        except (ValueError, OverflowError):
            raise BadRequestData("aggregation periods run past the year 9999") from None


def parse_duration(text: object) -> Duration:
    """`P[n]Y[n]M[n]W[n]DT[n]H[n]M[n]S` (aggrPeriodDuration) -> Duration; else BadRequestData."""
    if not isinstance(text, str):
        raise BadRequestData(f"aggrPeriodDuration must be an ISO 8601 duration, got {text!r}")
    match = _DURATION.fullmatch(text.strip())
    if match is None or text.strip() in ("P", "") or text.strip().endswith("T"):
        raise BadRequestData(f"aggrPeriodDuration is not an ISO 8601 duration: {text!r}")
    part = {k: (v or "0") for k, v in match.groupdict().items()}
    if any(len(v) > 12 for v in part.values()):
        raise BadRequestData(f"aggrPeriodDuration is too long: {text!r}")
    seconds = (
        int(part["W"]) * 604800 + int(part["D"]) * 86400 + int(part["h"]) * 3600
        + int(part["m"]) * 60 + float(part["s"].replace(",", "."))
    )
    return Duration(months=int(part["Y"]) * 12 + int(part["M"]), seconds=seconds)


# -- the temporal query ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TemporalQuery:
    """What part of the history to return, and in which representation."""

    timerel: str | None = None
    time_at: datetime | None = None
    end_time_at: datetime | None = None
    timeproperty: str = "observedAt"
    last_n: int | None = None
    representation: Representation = "normalized"
    aggr_methods: tuple[str, ...] = ()
    aggr_period: Duration | None = None  # None or zero: one bucket over the whole range
    sys_attrs: bool = False

    def bounds(self) -> tuple[float | None, float | None]:
        """Epoch seconds [lower, upper) that instances must fall in (None: unbounded)."""
        at = self.time_at.timestamp() if self.time_at else None
        if self.timerel == "before":
            return None, at
        if self.timerel == "after":
            return at, None
        if self.timerel == "between":
            assert self.end_time_at is not None
            return at, self.end_time_at.timestamp()
        return None, None


def parse_options(options: str | None, format_: str | None) -> tuple[Representation, bool]:
    """`options`/`format` of a temporal request -> (representation, sysAttrs)."""
    items = {item.strip() for item in (options or "").split(",") if item.strip()}
    unknown = items - _OPTIONS
    if unknown:
        raise BadRequestData(f"unknown options for a temporal query: {', '.join(sorted(unknown))}")
    if format_ is not None and format_ not in _REPRESENTATIONS:
        raise BadRequestData(f"unknown temporal format {format_!r}")
    chosen = {_REPRESENTATIONS[item] for item in items if item in _REPRESENTATIONS}
    if format_ is not None:
        representation = _REPRESENTATIONS[format_]
    elif len(chosen - {"normalized"}) > 1:
        raise BadRequestData("temporalValues and aggregatedValues exclude each other")
    else:
        representation = next(iter(chosen - {"normalized"}), "normalized")
    return representation, "sysAttrs" in items


def _methods(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list | tuple) or not all(isinstance(m, str) for m in raw):
        raise BadRequestData("aggrMethods must be a comma-separated string or an array of names")
    items = [m.strip() for m in raw]
    for method in items:
        if method not in AGGR_METHODS:
            raise BadRequestData(
                f"unknown aggregation method {method!r}; use {', '.join(AGGR_METHODS)}"
            )
    return tuple(dict.fromkeys(items))


def _last_n(raw: object) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise BadRequestData(f"lastN must be a positive integer, got {raw!r}")
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestData(f"lastN must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise BadRequestData(f"lastN must be a positive integer, got {raw!r}")
    return value


def parse_temporal_query(
    *,
    timerel: object = None,
    time_at: object = None,
    end_time_at: object = None,
    timeproperty: object = None,
    last_n: object = None,
    aggr_methods: object = None,
    aggr_period: object = None,
    options: str | None = None,
    format_: str | None = None,
) -> TemporalQuery:
    """Validate the temporal parameters of a request (query parameters, or the members of a
    Query's temporalQ, hence any JSON value); any inconsistency is BadRequestData."""
    if timerel is not None and (not isinstance(timerel, str) or timerel not in TIMERELS):
        raise BadRequestData(f"timerel must be one of {', '.join(TIMERELS)}, got {timerel!r}")
    if (timerel is None) != (time_at is None):
        raise BadRequestData("timerel and timeAt must be given together")
    start = parse_datetime(time_at, "timeAt") if time_at is not None else None
    end = parse_datetime(end_time_at, "endTimeAt") if end_time_at is not None else None
    if timerel == "between":
        if end is None:
            raise BadRequestData("timerel=between needs endTimeAt")
        assert start is not None
        if end <= start:
            raise BadRequestData("endTimeAt must be later than timeAt")
    prop = timeproperty or "observedAt"
    if not isinstance(prop, str) or prop not in TIME_PROPERTIES:
        raise BadRequestData(f"timeproperty must be one of {', '.join(TIME_PROPERTIES)}")
    representation, sys_attrs = parse_options(options, format_)
    methods = _methods(aggr_methods)
    period = parse_duration(aggr_period) if aggr_period else None
    if representation == "aggregatedValues" and not methods:
        raise BadRequestData("aggregatedValues needs aggrMethods")
    return TemporalQuery(
        timerel=timerel,
        time_at=start,
        end_time_at=end if timerel == "between" else None,
        timeproperty=prop,
        last_n=_last_n(last_n),
        representation=representation,
        aggr_methods=methods if representation == "aggregatedValues" else (),
        aggr_period=None if period is None or period.is_zero else period,
        sys_attrs=sys_attrs,
    )


# -- temporal entity payloads (POST /temporal/entities, POST .../attrs) ---------------------------


def parse_temporal_attributes(
    members: Mapping[str, Any], terms: Terms
) -> dict[str, list[Instance]]:
    """Attributes of a temporal payload: each maps to one instance or an array of instances,
    several of which may share a datasetId (they are moments of one attribute's history)."""
    attrs: dict[str, list[Instance]] = {}
    for name, raw in members.items():
        iri = terms.expand_term(check_name(name))
        items = raw if isinstance(raw, list) else [raw]
        if not items or not all(isinstance(item, dict) for item in items):
            raise BadRequestData(f"temporal attribute {name} must be an instance object or an "
                                 "array of instance objects")
        attrs[iri] = [inst for item in items for inst in parse_attribute(iri, item, terms)]
    return attrs


def parse_temporal_entity(body: object, terms: Terms) -> Entity:
    """A temporal entity payload -> internal form whose attributes hold every instance sent."""
    if not isinstance(body, dict):
        raise BadRequestData("a temporal entity must be a JSON object")
    entity: Entity = {"id": check_entity_id(body.get("id", body.get("@id")))}
    raw_type = body.get("type", body.get("@type"))
    if raw_type is not None:
        entity["type"] = expand_types(raw_type, terms)
    if body.get("scope") is not None:
        entity["scope"] = parse_scope(body["scope"])
    core = {"id", "@id", "type", "@type", "scope", "@context", "createdAt", "modifiedAt"}
    entity["attrs"] = parse_temporal_attributes(
        {k: v for k, v in body.items() if k not in core}, terms
    )
    return entity


def instance_moment(instance: Instance, default: str) -> str:
    """When an instance holds (observedAt, else the write's own time), in the stored form."""
    observed = instance.get("observedAt")
    return observed if isinstance(observed, str) else default


# -- history rows and instance ids ----------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    """One recorded attribute instance: `time` is the epoch of the asked timeproperty."""

    hid: int
    dataset_id: str
    time: float
    instance: Instance
    deleted: bool = False


def instance_urn(hid: int) -> str:
    return f"{INSTANCE_PREFIX}{hid}"


def instance_hid(instance_id: str) -> int:
    """The history row an instanceId names; ResourceNotFound is the caller's call."""
    digits = instance_id.removeprefix(INSTANCE_PREFIX)
    if digits == instance_id or not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
        raise BadRequestData(f"not an instanceId of this broker: {instance_id!r}")
    return int(digits)


def epoch_text(epoch: float) -> str:
    """An epoch in the stored form; a bucket ending past the year 9999 ends with it."""
    return format_datetime(datetime.fromtimestamp(min(epoch, _LAST_EPOCH), UTC))


def row_value(row: HistoryRow) -> Any:
    """The instance's value member (value, object, languageMap, ...); NULL for a deletion."""
    if row.deleted:
        return NULL
    return row.instance.get(VALUE_MEMBER.get(row.instance.get("type", ""), "value"))


# -- aggregation ----------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """Numbers count as themselves, booleans as 1/0 (as Stellio does); the rest not at all."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


def _distinct_key(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def stddev(count: int, shifted_sum: float, shifted_sumsq: float) -> float:
    """Sample standard deviation from sums of (x - K) and (x - K)² for any K near the mean
    (the shift keeps the subtraction from cancelling); 0 for a single value."""
    if count < 2:
        return 0.0
    variance = (shifted_sumsq - shifted_sum * shifted_sum / count) / (count - 1)
    return math.sqrt(max(variance, 0.0))


def aggregate_values(values: Sequence[Any], methods: Iterable[str]) -> dict[str, Any]:
    """The reference aggregation of one bucket's values: counts over every value; sum, avg,
    stddev, sumsq over numbers (booleans as 1/0); min/max over numbers, else over strings
    (ISO 8601 date-times compare as text); None where a method does not apply."""
    numbers = [n for n in (_number(v) for v in values) if n is not None]
    texts = [v for v in values if isinstance(v, str)]
    out: dict[str, Any] = {}
    for method in methods:
        if method == "totalCount":
            out[method] = len(values)
        elif method == "distinctCount":
            out[method] = len({_distinct_key(v) for v in values})
        elif method in ("min", "max"):
            pool: Sequence[Any] = numbers or texts
            out[method] = (min(pool) if method == "min" else max(pool)) if pool else None
        elif not numbers:
            out[method] = None
        elif method == "sum":
            out[method] = math.fsum(numbers)
        elif method == "avg":
            out[method] = math.fsum(numbers) / len(numbers)
        elif method == "sumsq":
            out[method] = math.fsum(n * n for n in numbers)
        else:  # stddev
            shift = numbers[0]
            out[method] = stddev(len(numbers), math.fsum(n - shift for n in numbers),
                                 math.fsum((n - shift) ** 2 for n in numbers))
    return out


@dataclass(frozen=True)
class Buckets:
    """The aggregation periods: fixed-length ones by arithmetic, calendar ones (months, years)
    by their edges; `period` None means one bucket from `origin` to `end`."""

    origin: float
    end: float
    period: Duration | None = None
    edges: tuple[float, ...] = field(default=())

    @classmethod
    def build(cls, origin: float, end: float, period: Duration | None,
              max_buckets: int = 10_000) -> Buckets:
        if period is None or not period.months:
            return cls(origin, end, period)
        start = datetime.fromtimestamp(origin, UTC)
        edges = [origin]
        while edges[-1] <= end:
            if len(edges) > max_buckets:
                raise BadRequestData(f"more than {max_buckets} aggregation periods; "
                                     "ask for a longer aggrPeriodDuration")
            edges.append(period.times(start, len(edges)).timestamp())
        return cls(origin, end, period, tuple(edges))

    def index(self, t: float) -> int:
        if self.period is None:
            return 0
        if self.edges:
            return bisect.bisect_right(self.edges, t) - 1
        return int((t - self.origin) // self.period.seconds)

    def span(self, index: int) -> tuple[float, float]:
        if self.period is None:
            return self.origin, self.end
        if self.edges:
            return self.edges[index], self.edges[index + 1]
        start = self.origin + index * self.period.seconds
        return start, start + self.period.seconds


@dataclass(frozen=True)
class Bucket:
    """One aggregation period of one attribute instance (datasetId)."""

    dataset_id: str
    start: float
    end: float
    values: Mapping[str, Any]


def aggregate_rows(rows: Iterable[HistoryRow], buckets: Buckets,
                   methods: Sequence[str]) -> list[Bucket]:
    """Bucket and aggregate rows in Python (for values SQL cannot aggregate)."""
    grouped: dict[tuple[str, int], list[Any]] = {}
    for row in rows:
        grouped.setdefault((row.dataset_id, buckets.index(row.time)), []).append(row_value(row))
    out = []
    for (dataset_id, index), values in sorted(grouped.items()):
        start, end = buckets.span(index)
        out.append(Bucket(dataset_id, start, end, aggregate_values(values, methods)))
    return out


# -- series and pagination ------------------------------------------------------------------------


@dataclass
class Series:
    """What the store found for one attribute, oldest first: history rows or aggregation
    buckets; `truncated` when more were in range than one answer may hold; `kind` the
    attribute type (Property, Relationship, ...) of its latest instance."""

    items: list[Any]
    truncated: bool = False
    kind: str = "Property"


@dataclass(frozen=True)
class Page:
    """The part of the asked time range an answer covers when instances were left out
    (answered with 206 and this as Content-Range)."""

    start: float
    end: float
    size: int | None

    def content_range(self) -> str:
        size = "*" if self.size is None else str(self.size)
        return f"date-time {epoch_text(self.start)}-{epoch_text(self.end)}/{size}"


def _time(item: Any) -> float:
    return float(item.start if isinstance(item, Bucket) else item.time)


def paginate(
    entities: Sequence[Mapping[str, Series]], query: TemporalQuery
) -> tuple[list[dict[str, Series]], Page | None]:
    """When a series was cut at the instance limit, cut every series of the answer at the same
    instant so that the answer covers one time range for all (as Stellio does)."""
    cut = [s for attrs in entities for s in attrs.values() if s.truncated and s.items]
    if not cut:
        return [dict(attrs) for attrs in entities], None
    everything = [_time(i) for attrs in entities for s in attrs.values() for i in s.items]
    lower, upper = query.bounds()
    if query.last_n is None:
        end = min(_time(s.items[-1]) for s in cut)
        page = Page(lower if lower is not None else min(everything), end, None)
        def keep(t: float) -> bool:
            return t <= end
    else:
        end = max(_time(s.items[0]) for s in cut)
        page = Page(upper if upper is not None else max(everything), end, query.last_n)
        def keep(t: float) -> bool:
            return t >= end
    clipped = [
        {iri: Series([i for i in s.items if keep(_time(i))], s.truncated, s.kind)
         for iri, s in attrs.items()}
        for attrs in entities
    ]
    return clipped, page


# -- rendering ------------------------------------------------------------------------------------


def _head(entity: Entity, terms: Terms, query: TemporalQuery) -> dict[str, Any]:
    types = [terms.compact_iri(t) for t in entity.get("type", [])]
    out: dict[str, Any] = {"id": entity["id"], "type": types[0] if len(types) == 1 else types}
    if "scope" in entity:
        out["scope"] = entity["scope"][0] if len(entity["scope"]) == 1 else entity["scope"]
    if query.sys_attrs:
        out.update({k: entity[k] for k in ("createdAt", "modifiedAt") if k in entity})
    return out


def _time_text(row: HistoryRow, timeproperty: str) -> str:
    member = row.instance.get(timeproperty)
    return member if isinstance(member, str) else epoch_text(row.time)


def render_row(row: HistoryRow, terms: Terms, query: TemporalQuery) -> dict[str, Any]:
    """One instance of the normalized temporal representation, with its instanceId."""
    kind = row.instance.get("type", "Property")
    out: dict[str, Any]
    if row.deleted:
        out = {"type": kind, VALUE_MEMBER.get(kind, "value"): NULL}
        if row.dataset_id:
            out["datasetId"] = row.dataset_id
    else:
        out = render_instance(row.instance, terms, RenderOptions(sys_attrs=query.sys_attrs))
    if query.timeproperty != "observedAt":
        out[query.timeproperty] = _time_text(row, query.timeproperty)
    out["instanceId"] = instance_urn(row.hid)
    return out


def _by_dataset(items: Iterable[Any]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(item.dataset_id, []).append(item)
    return groups


def _one_or_many(parts: list[dict[str, Any]]) -> Any:
    return parts[0] if len(parts) == 1 else parts


def _compact_value(kind: str, value: Any, terms: Terms) -> Any:
    if kind == "VocabProperty" and value != NULL:
        return [terms.compact_iri(v) for v in value] if isinstance(value, list) else (
            terms.compact_iri(value))
    return value


def _simplified(series: Series, terms: Terms, query: TemporalQuery) -> Any:
    parts = []
    for dataset_id, rows in _by_dataset(series.items).items():
        kind = series.kind
        values = [[_compact_value(kind, row_value(r), terms), _time_text(r, query.timeproperty)]
                  for r in rows]
        part: dict[str, Any] = {"type": kind, VALUES_MEMBER.get(kind, "values"): values}
        if dataset_id:
            part["datasetId"] = dataset_id
        parts.append(part)
    return _one_or_many(parts)


def _aggregated(series: Series, query: TemporalQuery) -> Any:
    parts = []
    for dataset_id, buckets in _by_dataset(series.items).items():
        part: dict[str, Any] = {"type": series.kind}
        for method in query.aggr_methods:
            part[method] = [[b.values.get(method), epoch_text(b.start), epoch_text(b.end)]
                            for b in buckets]
        if dataset_id:
            part["datasetId"] = dataset_id
        parts.append(part)
    return _one_or_many(parts)


def render_temporal_entity(
    entity: Entity, attrs: Mapping[str, Series], terms: Terms, query: TemporalQuery
) -> dict[str, Any]:
    """The entity in the query's temporal representation; attributes without instances in the
    range are left out."""
    out = _head(entity, terms, query)
    for iri, series in attrs.items():
        if not series.items:
            continue
        name = terms.compact_iri(iri)
        if query.representation == "aggregatedValues":
            out[name] = _aggregated(series, query)
        elif query.representation == "temporalValues":
            out[name] = _simplified(series, terms, query)
        else:
            out[name] = [render_row(r, terms, query) for r in series.items]
    return out
