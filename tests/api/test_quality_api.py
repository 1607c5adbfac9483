"""Data quality scores from the stored data, and the share of datasets passing the bar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cityhub.config import Settings
from tests.api.governance_helpers import ENTITIES, hub, seed_air_quality

CATALOGUE = """
[[dataset]]
id = "air"
type = "AirQualityObserved"
owner = "ecology"
frequency_s = 600
attributes = ["location", "pm25"]
ranges = { pm25 = [0, 500] }

[[dataset]]
id = "weather"
type = "WeatherObserved"
owner = "ecology"
frequency_s = 600
attributes = ["location", "temperature"]
"""


def _settings(tmp_path: Path, bar: float) -> Settings:
    (tmp_path / "datasets.toml").write_text(CATALOGUE)
    return Settings(data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'hub.db'}",
                    auth="disabled",  # access control has its own tests (tests/governance)
                    public_url="http://testserver", quality_bar=bar,
                    datasets_file=tmp_path / "datasets.toml")


async def test_scores_per_dimension(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    recent = now - timedelta(minutes=30)
    async with hub(_settings(tmp_path, 0.9)) as (_, http):
        # A good station: 10 in-range readings up to 2 minutes ago.
        await seed_air_quality(http, "good", 2.1, 41.3, [10] * 10,
                               start=now - timedelta(minutes=12))
        # A bad one: silent for a day, 2 of 4 readings out of range.
        await seed_air_quality(http, "bad", 2.2, 41.3, [5, -3, 700, 8],
                               start=now - timedelta(days=1))
        # No location (incomplete), readings in a second unit, one observed in the future.
        await seed_air_quality(http, "odd", 2.2, 41.3, [5, 6], start=recent, unit="GQ")
        await http.patch(f"{ENTITIES}/urn:ngsi-ld:AirQualityObserved:ecology:odd/attrs", json={
            "pm25": {"type": "Property", "value": 7, "unitCode": "GP",
                     "observedAt": (now + timedelta(days=2)).isoformat()}})
        await http.delete(f"{ENTITIES}/urn:ngsi-ld:AirQualityObserved:ecology:odd/attrs/location")
        air = (await http.get("/quality/datasets/air")).json()
        overall = (await http.get("/quality")).json()
    assert air["entities"] == 3
    assert air["completeness"] == round(5 / 6, 4)
    # good and odd (its latest reading is in the future) are on time, bad is a day late.
    assert air["timeliness"] == round(2 / 3, 4)
    # ranges: 10 + 2 of 4 + 3 readings in range; schema: the 5 attributes present are well
    # formed (2 GeoProperty locations, 3 Property pm25)
    assert air["validity"] == round((15 + 5) / (17 + 5), 4)
    assert air["consistency"] < 1.0
    assert not air["passed"]
    weather = next(d for d in overall["datasets"] if d["dataset"] == "weather")
    assert weather["entities"] == 0
    assert weather["overall"] == 0.0
    assert overall["bar"] == 0.9
    assert overall["sharePassing"] == 0.0


async def test_validity_checks_the_schema_of_declared_attributes(tmp_path: Path) -> None:
    async with hub(_settings(tmp_path, 0.9)) as (_, http):
        created = await http.post(ENTITIES, json={
            "id": "urn:ngsi-ld:AirQualityObserved:ecology:wrong", "type": "AirQualityObserved",
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [2.1, 41.3]}},
            "pm25": {"type": "Relationship", "object": "urn:ngsi-ld:Thing:1"}})
        assert created.status_code == 201, created.text
        air = (await http.get("/quality/datasets/air")).json()
    # schema: the location is well formed, pm25 is not a Property (1 of 2); ranges: its one
    # recorded instance is not a number (0 of 1)
    assert air["validity"] == round(1 / 3, 4)


async def test_share_passing_follows_the_bar(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with hub(_settings(tmp_path, 0.4)) as (_, http):
        await seed_air_quality(http, "good", 2.1, 41.3, [10] * 5, start=now - timedelta(minutes=5))
        overall = (await http.get("/quality")).json()
        missing = await http.get("/quality/datasets/nope")
    air = next(d for d in overall["datasets"] if d["dataset"] == "air")
    assert air == {"dataset": "air", "entities": 1, "completeness": 1.0, "timeliness": 1.0,
                   "validity": 1.0, "consistency": 1.0, "overall": 1.0, "passed": True}
    assert overall["sharePassing"] == 0.5  # weather has no data
    assert missing.status_code == 404
