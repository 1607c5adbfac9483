"""The FIWARE Smart Data Models a device may publish, with each attribute's unit (UN/CEFACT code),
kind and plausible range: what ingestion accepts and how it maps a measurement (docs/data-model.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attribute:
    """One measured attribute: `kind` is "number" or "text"; numbers carry a unitCode and range."""

    name: str
    kind: str = "number"
    unit: str | None = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceType:
    """A Smart Data Models entity type and the attributes a device of this type measures."""

    name: str
    attributes: tuple[Attribute, ...]
    category: str  # the Alert category its local rules raise

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)


def _n(name: str, unit: str | None, low: float, high: float) -> Attribute:
    return Attribute(name, "number", unit, low, high)


CATALOGUE: dict[str, DeviceType] = {
    t.name: t
    for t in (
        DeviceType("TrafficFlowObserved", (
            _n("intensity", None, 0, 100_000),
            _n("averageVehicleSpeed", "KMH", 0, 300),
            _n("occupancy", "C62", 0, 1),
        ), "traffic"),
        DeviceType("AirQualityObserved", (
            _n("pm25", "GQ", 0, 2000),
            _n("pm10", "GQ", 0, 3000),
            _n("no2", "GQ", 0, 4000),
            _n("o3", "GQ", 0, 2000),
            _n("co", "GP", 0, 200),
        ), "environment"),
        DeviceType("WeatherObserved", (
            _n("temperature", "CEL", -90, 70),
            _n("relativeHumidity", "P1", 0, 100),
            _n("windSpeed", "MTS", 0, 120),
            _n("precipitation", "MMT", 0, 500),
        ), "environment"),
        DeviceType("NoiseLevelObserved", (
            _n("LAeq", "2N", 0, 200),
            _n("LAmax", "2N", 0, 200),
        ), "environment"),
        DeviceType("Streetlight", (
            Attribute("powerState", "text", choices=("on", "off")),
            _n("illuminanceLevel", None, 0, 1),
            _n("powerConsumption", "KWT", 0, 100),
        ), "infrastructure"),
        DeviceType("ParkingSpot", (
            Attribute("status", "text", choices=("free", "occupied", "closed")),
        ), "traffic"),
        DeviceType("EnergyMeter", (
            _n("activePower", "KWT", -100_000, 100_000),
            _n("totalActiveEnergyImport", "KWH", 0, 1e12),
        ), "energy"),
    )
}


def device_type(name: str) -> DeviceType | None:
    """The catalogue entry of a Smart Data Models type, or None when cityhub does not map it."""
    return CATALOGUE.get(name)
