"""The benchmark's data: TrafficFlowObserved entities with five attributes, spread over a
square "city" whose size grows with the entity count so that geo-queries keep a constant
density (about 100 entities per km², so ~12 within 200 m of a point).

Entity i is a pure function of (i, seed, observedAt): every script and every phase can rebuild
exactly the rows another one loaded.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from cityhub.ngsild import jsonld
from cityhub.ngsild.terms import Terms

ENTITY_TYPE = "TrafficFlowObserved"
ENTITIES_PER_SEGMENT = 10  # refRoadSegment == X selects this many entities
DENSITY_PER_KM2 = 100.0
CENTER = (116.397, 39.909)  # lon, lat
INTENSITY_MAX = 3000.0  # vehicles/hour, uniform in [0, max)
KM_PER_DEG_LAT = 111.32
_MASK = (1 << 64) - 1


def entity_id(i: int) -> str:
    return f"urn:ngsi-ld:{ENTITY_TYPE}:tfo-{i:07d}"


def segment_id(i: int) -> str:
    """The road segment of entity i (ENTITIES_PER_SEGMENT consecutive entities share one)."""
    return f"urn:ngsi-ld:RoadSegment:rs-{i // ENTITIES_PER_SEGMENT:06d}"


@cache
def core_terms() -> Terms:
    """The term map of the core @context, offline (as the hub builds it for Link-less requests)."""
    services = jsonld.build_context_services(base_url="http://127.0.0.1:1026")
    return services.term_map(None)


@dataclass(frozen=True)
class City:
    """The square the entities lie in (degrees), sized for DENSITY_PER_KM2."""

    count: int

    @property
    def side_km(self) -> float:
        return math.sqrt(self.count / DENSITY_PER_KM2)

    @cached_property
    def half_lat(self) -> float:
        return self.side_km / 2 / KM_PER_DEG_LAT

    @cached_property
    def half_lon(self) -> float:
        return self.half_lat / math.cos(math.radians(CENTER[1]))

    def random_point(self, rng: random.Random) -> tuple[float, float]:
        return (
            round(CENTER[0] + rng.uniform(-self.half_lon, self.half_lon), 6),
            round(CENTER[1] + rng.uniform(-self.half_lat, self.half_lat), 6),
        )

    def square(self, rng: random.Random, side_m: float) -> list[list[float]]:
        """A closed square ring of `side_m` metres around a random point (GeoJSON order)."""
        lon, lat = self.random_point(rng)
        dlat = side_m / 2 / 1000 / KM_PER_DEG_LAT
        dlon = dlat / math.cos(math.radians(lat))
        corners = [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]
        return [[round(lon + sx * dlon, 6), round(lat + sy * dlat, 6)] for sx, sy in corners]


@dataclass(frozen=True)
class Reading:
    """The measured values of entity i at one moment."""

    intensity: float
    occupancy: float
    speed: float
    lon: float
    lat: float


def _unit(*key: int) -> float:
    """A uniform number in [0, 1) that is a pure function of `key` (the splitmix64 finalizer
    applied per part); much cheaper than seeding a random.Random per entity."""
    z = 0
    for part in key:
        z = (z ^ (part * 0x9E3779B97F4A7C15)) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
    return (z >> 11) / 9007199254740992.0


def reading(i: int, city: City, version: int = 0, seed: int = 7) -> Reading:
    """Entity i's values in its `version`-th report (its place never changes)."""
    return Reading(
        intensity=float(int(_unit(seed, i, version, 1) * INTENSITY_MAX)),
        occupancy=round(_unit(seed, i, version, 2), 4),
        speed=round(5.0 + 85.0 * _unit(seed, i, version, 3), 1),
        lon=round(CENTER[0] + (2 * _unit(seed, i, 4) - 1) * city.half_lon, 6),
        lat=round(CENTER[1] + (2 * _unit(seed, i, 5) - 1) * city.half_lat, 6),
    )


def payload(i: int, city: City, observed_at: str, version: int = 0) -> dict[str, Any]:
    """Entity i in NGSI-LD normalized form (what a client sends)."""
    r = reading(i, city, version)
    return {
        "id": entity_id(i),
        "type": ENTITY_TYPE,
        "intensity": {"type": "Property", "value": int(r.intensity), "observedAt": observed_at,
                      "unitCode": "E50"},
        "occupancy": {"type": "Property", "value": r.occupancy, "observedAt": observed_at,
                      "unitCode": "P1"},
        "averageVehicleSpeed": {"type": "Property", "value": r.speed, "observedAt": observed_at,
                                "unitCode": "KMH"},
        "refRoadSegment": {"type": "Relationship", "object": segment_id(i)},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [r.lon, r.lat]}},
    }


def q_thresholds(count: int, rng: random.Random, expected: float = 10.0) -> tuple[int, float]:
    """(X, Y) so that `intensity>X;occupancy<Y` matches about `expected` of `count` entities,
    with both terms about equally selective (each alone matches ~sqrt(expected * count))."""
    share = math.sqrt(expected / count) * rng.uniform(0.7, 1.4)
    other = min(1.0, expected / count / share)
    x = int(INTENSITY_MAX * (1 - share)) - 1
    return x, round(other, 6)
