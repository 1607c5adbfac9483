"""The fixture district: shapes of the shared data model, reproducible from a seed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cityhub.web import sample_district as sd


def test_a_grid_district_has_its_roads_junctions_and_sensors() -> None:
    state = sd.build(size=4, sensors=40)
    everything = sd.entities(state, "2026-01-01T00:00:00.000000Z")
    kinds: dict[str, int] = {}
    for entity in everything:
        kinds[entity["type"]] = kinds.get(entity["type"], 0) + 1
    assert kinds == {"RoadSegment": 24, "TrafficSignal": 16, "Device": 40,
                     "AirQualityObserved": 6, "EnergyMeter": 8, "Alert": 3, "CongestionIndex": 1}
    road = everything[0]
    assert road["location"]["value"]["type"] == "LineString"
    assert road["congestionLevel"]["value"] in sd.LEVELS
    assert road["averageSpeed"]["unitCode"] == "KMH"
    assert len({e["id"] for e in everything}) == len(everything)
    assert all(e["id"].startswith(f"urn:ngsi-ld:{e['type']}:") for e in everything)


def test_the_same_seed_gives_the_same_district() -> None:
    now = "2026-01-01T00:00:00.000000Z"
    assert sd.entities(sd.build(seed=3), now) == sd.entities(sd.build(seed=3), now)


@given(st.floats(min_value=-5, max_value=20, allow_nan=False))
def test_congestion_levels_follow_the_index_bands(index: float) -> None:
    level = sd.congestion_level(index)
    assert level == sd.LEVELS[min(max(int(index // 2), 0), 4)]
    assert sd.LEVELS.index(level) <= sd.LEVELS.index(sd.congestion_level(index + 2))
