"""The PM2.5 IAQI used for stations that report concentrations only (the simulated devices)."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from cityhub.web.aqi import PM25_BREAKPOINTS, pm25_iaqi


def test_the_breakpoints_of_hj_633_are_met_exactly() -> None:
    for concentration, index in PM25_BREAKPOINTS:
        assert pm25_iaqi(concentration) == index
    assert pm25_iaqi(55.0) == 75.0  # half-way between 35 (50) and 75 (100)
    assert pm25_iaqi(900.0) == 500.0


@given(st.floats(min_value=-10, max_value=1000), st.floats(min_value=0, max_value=100))
def test_a_dirtier_air_never_has_a_lower_index(pm25: float, more: float) -> None:
    assert 0 <= pm25_iaqi(pm25) <= pm25_iaqi(pm25 + more) <= 500


async def test_the_summary_scores_stations_that_report_pm25_only(
        client: httpx.AsyncClient) -> None:
    stations = [{"id": f"urn:ngsi-ld:AirQualityObserved:sim:{n}", "type": "AirQualityObserved",
                 "pm25": {"type": "Property", "value": pm25}}
                for n, pm25 in enumerate((20.0, 90.0))]
    answer = await client.post("/ngsi-ld/v1/entityOperations/upsert", json=stations)
    assert answer.status_code in (201, 204), answer.text
    body = (await client.get("/ops/summary")).json()
    assert body["airQuality"]["stations"] == 2
    assert body["airQuality"]["maxAqi"] == pm25_iaqi(90.0) == 118.8
    rows = {row["key"]: row for row in body["scorecard"]}
    assert rows["goodAirShare"]["value"] == 50.0  # 20 ug/m3 is good (IAQI 28.6), 90 is not
