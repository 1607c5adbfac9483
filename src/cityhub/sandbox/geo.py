"""Network coordinates to WGS84: SUMO's own projection when the network has one, else the
district is placed at a configurable origin (generated networks have no geo-reference)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Where a network without a projection is placed (a neutral default; pass your own).
DEFAULT_ORIGIN = (116.3975, 39.9087)
_LOCATION = re.compile(r'<location\b[^>]*projParameter="([^"]*)"')

ToLonLat = Callable[[float, float], tuple[float, float]]


def has_projection(net: Path) -> bool:
    with net.open("r", errors="replace") as handle:
        head = handle.read(50_000)
    match = _LOCATION.search(head)
    return bool(match and match.group(1).strip() not in ("", "!"))


def local_to_lonlat(origin: tuple[float, float] = DEFAULT_ORIGIN) -> ToLonLat:
    """Metres east/north of `origin` (lon, lat) to lon/lat (equirectangular: fine for a
    district)."""
    lon0, lat0 = origin
    per_lon = 111_320.0 * math.cos(math.radians(lat0))

    def convert(x: float, y: float) -> tuple[float, float]:
        return round(lon0 + x / per_lon, 7), round(lat0 + y / 110_574.0, 7)

    return convert


def converter(api: Any, net: Path, origin: tuple[float, float] = DEFAULT_ORIGIN) -> ToLonLat:
    """The right conversion for a running simulation of `net`."""
    if has_projection(net):
        def convert(x: float, y: float) -> tuple[float, float]:
            lon, lat = api.simulation.convertGeo(x, y)
            return round(float(lon), 7), round(float(lat), 7)

        return convert
    return local_to_lonlat(origin)
