"""The air-quality index of a station that reports concentrations only (the simulated devices
send pm25, pm10, no2, ... but no `airQualityIndex`).

The index is the PM2.5 individual air quality index (IAQI) of China's HJ 633-2012, linear
between its breakpoints (24-hour concentration, ug/m3); static/ops.js holds the same table for
the page.
"""

from __future__ import annotations

import itertools

# (concentration, IAQI) breakpoints of PM2.5, HJ 633-2012 table 1
PM25_BREAKPOINTS = ((0.0, 0), (35.0, 50), (75.0, 100), (115.0, 150), (150.0, 200),
                    (250.0, 300), (350.0, 400), (500.0, 500))


def pm25_iaqi(pm25: float) -> float:
    """IAQI of a PM2.5 concentration (ug/m3), 500 above the table, rounded to one decimal."""
    if pm25 <= 0:
        return 0.0
    for (c_low, i_low), (c_high, i_high) in itertools.pairwise(PM25_BREAKPOINTS):
        if pm25 <= c_high:
            return round(i_low + (i_high - i_low) * (pm25 - c_low) / (c_high - c_low), 1)
    return 500.0
