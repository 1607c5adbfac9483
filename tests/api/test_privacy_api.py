"""Private aggregates: near the truth on large data, and refused once the budget is spent.

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


def params(statistic: str, epsilon: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"attribute": "pm25", "statistic": statistic, "epsilon": epsilon,
            "bbox": "2.0,41.0,2.2,41.1", "cell": 0.1, "start": iso(T0),
            "end": iso(T0 + timedelta(hours=10)), "bucket": 36000, **extra}


async def seed(http: httpx.AsyncClient) -> None:
    # Two stations in the west cell (values 20 and 40), one in the east cell (values 900,
    # clamped to the declared 500), none outside the bbox counted.
    await seed_air_quality(http, "w1", 2.05, 41.05, [20] * N)
    await seed_air_quality(http, "w2", 2.07, 41.02, [40] * N)
    await seed_air_quality(http, "e1", 2.15, 41.05, [900] * N)
    await seed_air_quality(http, "far", 3.5, 41.05, [10] * N)


async def test_noisy_answers_are_near_the_truth(tmp_path: Path) -> None:
    async with hub(_settings(tmp_path)) as (app, http):
        await seed(http)
        count = await http.get(AGGREGATE, params=params("count"))
        assert count.status_code == 200, count.text
        cells = {tuple(g["cell"]): g["value"] for g in count.json()["groups"]}
        assert set(cells) == {(0, 0), (1, 0)}
        assert abs(cells[(0, 0)] - 2 * N) < 20  # Laplace scale 1
        assert abs(cells[(1, 0)] - N) < 20

        mean = (await http.get(AGGREGATE, params=params("mean"))).json()
        cells = {tuple(g["cell"]): g["value"] for g in mean["groups"]}
        # sum noise scale 500 / 0.5 = 1000: 20 scales over 1,200 readings is about 17.
        assert abs(cells[(0, 0)] - 30) < 20
        assert 480 <= cells[(1, 0)] <= 500  # clamped to the declared range

        total = (await http.get(AGGREGATE, params=params("sum"))).json()
        west = next(g["value"] for g in total["groups"] if g["cell"] == [0, 0])
        assert abs(west - 60 * N) < 20 * 500
        assert total["budget"]["spent"] == 3.0
        app.state.audit.flush()
        events = app.state.ledger.dataset_records("", "air-quality")
        assert [r["detail"]["statistic"] for _, r in events] == ["count", "mean", "sum"]
        assert {r["action"] for _, r in events} == {"privacy.aggregate"}


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
                    params("count", end=iso(T0))):
            response = await http.get(AGGREGATE, params=bad)
            assert response.status_code == 400, (bad, response.text)
        assert (await http.get("/privacy/datasets/nope/budget")).status_code == 404
        budget = (await http.get("/privacy/datasets/air-quality/budget")).json()
        assert budget["spent"] == 0.0
