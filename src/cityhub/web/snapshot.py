"""The district in memory, for the operations page: the drawn attributes of every entity of the
page's layers, built once from the store and kept current by `apply`, which the store's change
listener calls (in-process bus) or the bus's broadcast listener (NATS: every process's changes).

A first view is then one read of this snapshot (no query of 10,000 entities per page load),
served as compact columnar JSON: per layer `{"id": [...], "x": [...], "y": [...], "state":
[...]}`, lines as flat coordinate lists. `cityhub.web.visibility` cuts it to what a principal may
read; `cityhub.web.summary` computes the key figures and the scorecard from what is left.

Consistency: the store's listener runs inside the write transaction and applies the entity the
store hands it. A write whose transaction is then rolled back (a later listener failing) stays
in the snapshot until that entity changes again; the hub's writes roll back only on errors.
From the bus only committed changes arrive, a moment later. While a tenant is first loaded,
entities changed meanwhile keep the changed state (the change that arrives last wins).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cityhub.api.query_params import build_query
from cityhub.ngsild.model import Entity
from cityhub.ngsild.terms import Terms
from cityhub.store.port import Change, Store
from cityhub.web.aqi import pm25_iaqi
from cityhub.web.live import short

LOAD_PAGE = 1000
HISTORY = 240  # congestion index values kept for the chart


@dataclass(frozen=True)
class Layer:
    """One map layer: an entity type, its geometry and the attributes drawn (column: attr)."""

    key: str
    type: str
    geometry: str  # "point", "line" or "" (not on the map)
    columns: tuple[tuple[str, str], ...]
    open_only: bool = False  # alerts: only those with status "open"
    placed_only: bool = True  # False: kept without a location too (charted, not on the map)


LAYERS = (
    Layer("roads", "RoadSegment", "line", (("name", "name"), ("level", "congestionLevel"),
                                          ("index", "congestionIndex"),
                                          ("speed", "averageSpeed"))),
    Layer("signals", "TrafficSignal", "point", (("name", "name"), ("phase", "currentPhase"),
                                               ("state", "phaseState"))),
    Layer("sensors", "Device", "point", (("state", "deviceState"),)),
    Layer("stations", "AirQualityObserved", "point", (("name", "name"),
                                                     ("aqi", "airQualityIndex"),
                                                     ("level", "airQualityLevel")),
          placed_only=False),
    Layer("meters", "EnergyMeter", "point", (("name", "name"), ("power", "activePower")),
          placed_only=False),
    Layer("alerts", "Alert", "point", (("severity", "severity"),
                                       ("description", "description"),
                                       ("category", "category"), ("issued", "dateIssued")),
          open_only=True),
    Layer("indices", "CongestionIndex", "", (("index", "congestionIndex"),
                                             ("level", "congestionLevel"))),
)
BY_TYPE = {layer.type: layer for layer in LAYERS}
CITY_SUFFIX = ":city"

Row = tuple[Any, ...]  # (x or line, y, *columns); x, y None off the map


def _first(instances: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if not instances:
        return None
    return next((i for i in instances if "datasetId" not in i), instances[0])


def _plain(instance: dict[str, Any] | None) -> Any:
    if instance is None:
        return None
    for key in ("value", "object", "vocab"):
        if key in instance:
            return instance[key]
    return None


@dataclass
class _Tenant:
    rows: dict[str, dict[str, Row]] = field(default_factory=lambda: {k.key: {} for k in LAYERS})
    history: list[tuple[str, float]] = field(default_factory=list)
    version: int = 0
    loaded: bool = False
    touched: set[str] | None = None  # ids changed while loading


class DistrictSnapshot:
    """Per tenant, per layer: id -> row of drawn values. Thread-safe."""

    def __init__(self, store: Store, terms: Terms,
                 history: Callable[[str, str], list[tuple[str, float]]] | None = None) -> None:
        self.store = store
        self.terms = terms
        self._history = history  # (tenant, city index id) -> [(observedAt, value)], oldest first
        self._lock = threading.Lock()
        self._loading = threading.Lock()
        self._tenants: dict[str, _Tenant] = {}
        self._iri = {name: terms.expand_term(name) for layer in LAYERS
                     for _, name in (*layer.columns, ("location", "location"),
                                     ("status", "status"), ("pm25", "pm25"))}

    # -- rows ----------------------------------------------------------------------------------

    def _attr(self, entity: Entity, name: str) -> Any:
        return _plain(_first(entity["attrs"].get(self._iri[name])))

    def row(self, layer: Layer, entity: Entity) -> Row | None:
        """The drawn values of an entity, or None when it is not shown (closed alert, no
        geometry where the layer needs one)."""
        if layer.open_only and self._attr(entity, "status") != "open":
            return None
        x: Any = None
        y: Any = None
        if layer.geometry:
            where = self._attr(entity, "location")
            kind = where.get("type") if isinstance(where, dict) else None
            coordinates = where.get("coordinates") if isinstance(where, dict) else None
            if layer.geometry == "point" and kind == "Point" and coordinates:
                x, y = round(float(coordinates[0]), 6), round(float(coordinates[1]), 6)
            elif layer.geometry == "line" and kind == "LineString" and coordinates:
                x = [round(float(v), 6) for point in coordinates for v in point[:2]]
            elif layer.placed_only:
                return None
        values = [self._attr(entity, name) for _, name in layer.columns]
        if layer.type == "AirQualityObserved" and not _number(values[1]):
            pm25 = self._attr(entity, "pm25")
            values[1] = pm25_iaqi(float(pm25)) if _number(pm25) else None
        return (x, y, *values)

    # -- loading and changes ---------------------------------------------------------------------

    def tenant(self, tenant: str) -> _Tenant:
        """The tenant's rows, loaded from the store on first use."""
        with self._lock:
            found = self._tenants.get(tenant)
            if found is not None and found.loaded:
                return found
        with self._loading:  # one load at a time; others wait for it
            with self._lock:
                found = self._tenants.setdefault(tenant, _Tenant())
                if found.loaded:
                    return found
                found.touched = set()
            self._load(tenant, found)
            return found

    def _load(self, tenant: str, into: _Tenant) -> None:
        for layer in LAYERS:
            rows: dict[str, Row] = {}
            for entity in self._all(tenant, layer.type):
                made = self.row(layer, entity)
                if made is not None:
                    rows[entity["id"]] = made
            with self._lock:
                touched = into.touched or set()
                current = into.rows[layer.key]
                for entity_id, made in rows.items():
                    if entity_id not in touched:
                        current[entity_id] = made
        city = self.city_id(tenant, into)
        history = self._history(tenant, city) if self._history and city else []
        with self._lock:
            into.history = history[-HISTORY:] + [h for h in into.history if h not in history]
            into.loaded, into.touched = True, None
            into.version += 1

    def _all(self, tenant: str, entity_type: str) -> Iterable[Entity]:
        offset = 0
        while True:
            query = build_query(self.terms, type_=entity_type, limit=LOAD_PAGE,
                                max_limit=LOAD_PAGE, offset=offset)
            page = self.store.query(tenant, query).entities
            yield from page
            if len(page) < LOAD_PAGE:
                return
            offset += LOAD_PAGE

    def apply(self, changes: Iterable[Change]) -> None:
        """Apply the store's changes (called inside its write transaction: never reads)."""
        with self._lock:
            for change in changes:
                into = self._tenants.get(change.tenant)
                if into is None:
                    continue  # never asked for: loaded from the store when it is
                entity = change.entity or change.previous
                types = [short(t) for t in (entity or {}).get("type", [])]
                layer = next((BY_TYPE[t] for t in types if t in BY_TYPE), None)
                if layer is None:
                    continue
                made = self.row(layer, change.entity) if change.entity else None
                rows = into.rows[layer.key]
                if made is None:
                    rows.pop(change.entity_id, None)
                else:
                    rows[change.entity_id] = made
                if into.touched is not None:
                    into.touched.add(change.entity_id)
                if layer.key == "indices" and made is not None and \
                        change.entity_id.endswith(CITY_SUFFIX) and _number(made[2]):
                    self._remember(into, change.entity, float(made[2]))
                into.version += 1

    def _remember(self, into: _Tenant, entity: Entity | None, value: float) -> None:
        instance = _first((entity or {"attrs": {}})["attrs"].get(self._iri["congestionIndex"]))
        at = str((instance or {}).get("observedAt") or (entity or {}).get("modifiedAt") or "")
        if into.history and into.history[-1][0] == at:
            into.history[-1] = (at, value)
        else:
            into.history.append((at, value))
            del into.history[:-HISTORY]

    def listener(self) -> Callable[[Any, list[Change]], None]:
        return lambda _conn, changes: self.apply(changes)

    # -- reading ---------------------------------------------------------------------------------

    def city_id(self, tenant: str, into: _Tenant | None = None) -> str | None:
        rows = (into or self.tenant(tenant)).rows["indices"]
        return next((i for i in rows if i.endswith(CITY_SUFFIX)), next(iter(rows), None))

    def copy(self, tenant: str) -> tuple[int, dict[str, dict[str, Row]], list[tuple[str, float]]]:
        """The version and a shallow copy of every layer's rows and the history."""
        into = self.tenant(tenant)
        with self._lock:
            return (into.version, {k: dict(v) for k, v in into.rows.items()},
                    list(into.history))

    def rows_of(self, tenant: str, layer: str, ids: Iterable[str]) -> dict[str, Row | None]:
        """Current rows of some entities (None: gone or no longer shown)."""
        into = self.tenant(tenant)
        with self._lock:
            rows = into.rows[layer]
            return {i: rows.get(i) for i in ids}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def columns(layer: Layer, rows: dict[str, Row]) -> dict[str, list[Any]]:
    """Rows as columns: id, x and y (points) or line (flat lon, lat pairs), then the values."""
    ids = sorted(rows)
    out: dict[str, list[Any]] = {"id": ids}
    if layer.geometry == "point":
        out["x"] = [rows[i][0] for i in ids]
        out["y"] = [rows[i][1] for i in ids]
    elif layer.geometry == "line":
        out["line"] = [rows[i][0] for i in ids]
    for n, (name, _) in enumerate(layer.columns):
        out[name] = [rows[i][2 + n] for i in ids]
    return out
