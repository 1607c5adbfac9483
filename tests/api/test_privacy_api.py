"""Private aggregates: one device is the privacy unit (contributions bounded), grid cells or
named areas, near the truth at a large epsilon, and refused once the budget is spent.

The Laplace noise cannot be seeded, so bounds are wide: each one fails with probability
below e^-20 (the noise would have to exceed 20 times its scale).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from cityhub.config import Settings
from tests.api.governance_helpers import T0, hub, iso, seed_air_quality

AGGREGATE = "/privacy/datasets/air-quality/aggregate"
N = 600  # readings per station, one a minute: 10 hours


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'hub.db'}",
                    auth="disabled",  # access control has its own tests (tests/governance)
                    public_url="http://testserver", **extra)


# A catalogue with a narrow pm25 range (small sum sensitivity) and two districts, so that the
# answers at a large epsilon are close to the truth.
CATALOGUE = """
[[dataset]]
id = "air-quality"
type = "AirQualityObserved"
owner = "ecology"
tier = "public"
ranges = { pm25 = [0, 50] }

[[area]]
id = "west"
name = "West district"
polygon = [[2.0, 41.0], [2.1, 41.0], [2.1, 41.1], [2.0, 41.1], [2.0, 41.0]]

[[area]]
id = "east"
name = "East district"
polygon = [[2.1, 41.0], [2.2, 41.0], [2.2, 41.1], [2.1, 41.1], [2.1, 41.0]]
"""


def params(statistic: str, epsilon: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"attribute": "pm25", "statistic": statistic, "epsilon": epsilon,
            "bbox": "2.0,41.0,2.2,41.1", "cell": 0.1, "start": iso(T0),
            "end": iso(T0 + timedelta(hours=10)), "bucket": 36000, **extra}


async def seed(http: httpx.AsyncClient) -> None:
    # Two stations in the west cell (values 20 and 40), one in the east cell (values 900,
    # clamped to the declared maximum), none outside the bbox counted.
    await seed_air_quality(http, "w1", 2.05, 41.05, [20] * N)
    await seed_air_quality(http, "w2", 2.07, 41.02, [40] * N)
    await seed_air_quality(http, "e1", 2.15, 41.05, [900] * N)
    await seed_air_quality(http, "far", 3.5, 41.05, [10] * N)


def by_place(answer: dict[str, Any], key: str = "cell") -> dict[Any, float]:
    return {str(g[key]): g["value"] for g in answer["groups"]}


async def test_the_privacy_unit_is_a_device_with_bounded_contributions(tmp_path: Path) -> None:
    catalogue = tmp_path / "catalogue.toml"
    catalogue.write_text(CATALOGUE)
    settings = _settings(tmp_path, datasets_file=catalogue, privacy_max_epsilon=100,
                         privacy_budget=1000)
    async with hub(settings) as (app, http):
        await seed(http)
        # 600 readings per station, but each device counts at most k per bucket
        # (Laplace scale k * 1 bucket / 100: bounds of 20 scales)
        one = await http.get(AGGREGATE, params=params("count", 100, contributions=1))
        assert one.status_code == 200, one.text
        body = one.json()
        assert (body["privacyUnit"], body["contributions"]) == ("device", 1)
        assert body["sensitivity"] == {"count": 1.0, "sum": 50.0}
        cells = by_place(body)
        assert set(cells) == {"[0, 0]", "[1, 0]"}
        assert abs(cells["[0, 0]"] - 2) < 0.2
        assert abs(cells["[1, 0]"] - 1) < 0.2
        five = by_place((await http.get(AGGREGATE, params=params(
            "count", 100, contributions=5))).json())
        assert abs(five["[0, 0]"] - 10) < 1
        assert abs(five["[1, 0]"] - 5) < 1

        # sum scale 50 / 100; mean spends half on each: sum scale 1, count scale 0.02
        total = by_place((await http.get(AGGREGATE, params=params(
            "sum", 100, contributions=1))).json())
        assert abs(total["[0, 0]"] - 60) < 10
        mean = by_place((await http.get(AGGREGATE, params=params(
            "mean", 100, contributions=1))).json())
        assert abs(mean["[0, 0]"] - 30) < 15
        assert 40 <= mean["[1, 0]"] <= 50  # 900 clamped to the declared 50

        # named areas instead of a grid: the same devices, grouped by district
        del_bbox = {k: v for k, v in params("count", 100, contributions=1).items()
                    if k != "bbox"}
        districts = (await http.get(AGGREGATE, params={**del_bbox, "areas": "*"})).json()
        assert [(g["area"], g["name"]) for g in districts["groups"]] == [
            ("west", "West district"), ("east", "East district")]
        counts = by_place(districts, "area")
        assert abs(counts["west"] - 2) < 0.2
        assert abs(counts["east"] - 1) < 0.2
        east = (await http.get(AGGREGATE, params={**del_bbox, "areas": "east"})).json()
        assert [g["area"] for g in east["groups"]] == ["east"]
        listed = (await http.get("/privacy/areas")).json()
        assert [a["id"] for a in listed] == ["west", "east"]

        spent = (await http.get("/privacy/datasets/air-quality/budget")).json()
        assert spent["spent"] == 600.0
        app.state.audit.flush()
        events = app.state.ledger.dataset_records("", "air-quality")
        assert [r["detail"]["statistic"] for _, r in events] == ["count", "count", "sum",
                                                                  "mean", "count", "count"]
        assert {r["action"] for _, r in events} == {"privacy.aggregate"}
        assert events[0][1]["detail"]["contributions"] == 1


async def test_budget_is_tracked_and_refuses_when_spent(tmp_path: Path) -> None:
    async with hub(_settings(tmp_path, privacy_budget=2.0, privacy_max_epsilon=1.0)) as (_, http):
        await seed(http)
        for spent in (0.5, 1.5):
            answer = await http.get(AGGREGATE, params=params("count", 0.5 if spent < 1 else 1.0))
            assert answer.status_code == 200
            assert answer.json()["budget"]["spent"] == spent
        refused = await http.get(AGGREGATE, params=params("count", 0.75))
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["title"] == "Privacy budget exhausted"
        assert "0.5 of its privacy budget left" in refused.json()["detail"]
        last = await http.get(AGGREGATE, params=params("count", 0.5))  # exactly the rest
        assert last.status_code == 200
        budget = (await http.get("/privacy/datasets/air-quality/budget")).json()
        assert budget == {"dataset": "air-quality", "total": 2.0, "spent": 2.0,
                          "remaining": 0.0, "queries": 3}
        assert (await http.get(AGGREGATE, params=params("count", 0.01))).status_code == 403
        listed = (await http.get("/privacy/budgets")).json()
        assert {b["dataset"]: b["spent"] for b in listed}["air-quality"] == 2.0
        report = (await http.get("/audit/datasets/air-quality/report")).json()
        assert report["events"] == 3  # answered queries are in the ledger, refusals spend nothing


async def test_unanswerable_queries_spend_nothing(tmp_path: Path) -> None:
    async with hub(_settings(tmp_path)) as (_, http):
        for bad in (params("count", attribute="airQualityLevel"),  # no declared range
                    params("count", epsilon=5),  # above the per-query maximum
                    params("count", cell=0.0001),  # far too many cells
                    params("count", bbox="2,41,1,42"),
                    params("count", bbox="nonsense"),
                    params("count", end=iso(T0)),
                    params("count", areas="*"),  # a grid and areas at once
                    {k: v for k, v in params("count").items() if k != "bbox"},  # neither
                    {**{k: v for k, v in params("count").items() if k != "bbox"},
                     "areas": "atlantis"},  # not declared
                    params("count", contributions=0)):
            response = await http.get(AGGREGATE, params=bad)
            assert response.status_code == 400, (bad, response.text)
        assert (await http.get("/privacy/datasets/nope/budget")).status_code == 404
        budget = (await http.get("/privacy/datasets/air-quality/budget")).json()
        assert budget["spent"] == 0.0
