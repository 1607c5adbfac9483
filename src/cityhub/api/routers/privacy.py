"""Public aggregates under differential privacy, and the privacy budget of each dataset.

The aggregate is the public face of sensitive data: any authenticated principal but a device may
ask it (citizens included; action `aggregate` of policies/services.cedar). It is not open to
callers without a token: each answer spends epsilon from the dataset's finite budget, and an
anonymous caller could exhaust it for everyone with nobody to hold to account. The principal
who spent it is the actor of the budget charge and of the audit event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from cityhub.api.deps import SettingsDep, StoreDep, WriteTenant
from cityhub.api.governance_state import DATASET_ID, catalogued, history_reader, record
from cityhub.api.ldio import json_response
from cityhub.api.service_access import allow, dataset_resource, may
from cityhub.governance import observations, privacy
from cityhub.governance.budget import BudgetExhausted, BudgetState, PrivacyBudgets
from cityhub.governance.events import AuditEvent
from cityhub.governance.memory_catalogue import expand_name
from cityhub.ngsild.errors import BadRequestData, NgsiLdError
from cityhub.store.temporal import TemporalStore

router = APIRouter(prefix="/privacy", tags=["privacy"])
DatasetId = Annotated[str, Path(pattern=DATASET_ID, description="Dataset id")]


class PrivacyBudgetExhausted(NgsiLdError):
    kind = "AccessDenied"
    status = 403
    title = "Privacy budget exhausted"


def _budgets(request: Request) -> PrivacyBudgets:
    budgets: PrivacyBudgets = request.app.state.privacy_budgets
    return budgets


def _budget(state: BudgetState) -> dict[str, object]:
    return {"dataset": state.dataset, "total": state.total, "spent": round(state.spent, 9),
            "remaining": round(state.remaining, 9), "queries": state.queries}


@router.get("/budgets", summary="Privacy budget (epsilon) of every catalogued dataset")
def budgets(request: Request, tenant: WriteTenant) -> Response:
    ledger = _budgets(request)
    allowed = [d for d in request.app.state.catalogue.datasets(tenant)
               if may(request, "aggregate", dataset_resource(tenant, d))]
    return json_response([_budget(ledger.state(tenant, d.id)) for d in allowed])


@router.get("/datasets/{dataset}/budget", summary="Privacy budget of one dataset")
def budget(request: Request, tenant: WriteTenant, dataset: DatasetId) -> Response:
    allow(request, "aggregate", dataset_resource(tenant, catalogued(request, tenant, dataset)))
    return json_response(_budget(_budgets(request).state(tenant, dataset)))


def _parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(part) for part in text.split(","))
    except ValueError:
        raise BadRequestData("bbox must be four numbers: west,south,east,north") from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise BadRequestData("bbox must lie in WGS84 with west < east and south < north")
    return west, south, east, north


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@router.get("/datasets/{dataset}/aggregate",
            summary="Count, sum or mean of a numeric attribute per grid cell and time bucket, "
            "under differential privacy (spends epsilon from the dataset's budget)")
def aggregate(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    temporal: Annotated[TemporalStore, Depends(history_reader)],
    tenant: WriteTenant,
    dataset: DatasetId,
    attribute: Annotated[str, Query(min_length=1, max_length=256, pattern=r"^[^\s<>\"']+$",
                                    description="Numeric attribute (short name or IRI)")],
    statistic: Annotated[Literal["count", "sum", "mean"], Query()],
    epsilon: Annotated[float, Query(gt=0, le=100, description="Privacy loss of this answer")],
    bbox: Annotated[str, Query(max_length=200, description="west,south,east,north (WGS84)")],
    start: Annotated[datetime, Query(description="Start of the first bucket (ISO 8601)")],
    end: Annotated[datetime, Query(description="End of the time range (ISO 8601)")],
    cell: Annotated[float, Query(gt=0, le=10, description="Grid cell size in degrees")] = 0.01,
    bucket: Annotated[int, Query(ge=60, le=31 * 86400, description="Bucket in seconds")] = 3600,
) -> Response:
    found = catalogued(request, tenant, dataset)
    actor = allow(request, "aggregate", dataset_resource(tenant, found)).key
    iri = expand_name(attribute)
    bounds = found.ranges.get(iri)
    if bounds is None:
        raise BadRequestData(f"dataset {dataset!r} declares no range for {attribute!r}: "
                             "values cannot be clamped")
    if epsilon > settings.privacy_max_epsilon:
        raise BadRequestData(f"epsilon {epsilon} exceeds the per-query maximum "
                             f"{settings.privacy_max_epsilon}")
    query = privacy.AggregateQuery(statistic, iri, epsilon, privacy.Grid(*_parse_bbox(bbox), cell),
                                   _utc(start), _utc(end), timedelta(seconds=bucket))
    try:
        query.check()
        state = _budgets(request).charge(tenant, dataset, epsilon, actor,
                                         f"{statistic}({attribute})")
    except privacy.PrivacyQueryError as error:
        raise BadRequestData(str(error)) from None
    except BudgetExhausted as error:
        raise PrivacyBudgetExhausted(str(error)) from None
    record(request, AuditEvent(actor=actor, action="privacy.aggregate", subject=dataset,
                               tenant=tenant, dataset=dataset, decision="answered",
                               detail={"statistic": statistic, "attribute": iri,
                                       "epsilon": epsilon}))
    rows = []
    for entity in observations.entities(store, found):
        where = observations.point(entity)
        if where is None or query.grid.index(*where) is None:
            continue
        for reading in observations.readings(temporal, tenant, entity, iri, query.start,
                                             query.end):
            rows.append((where[0], where[1], reading.at, reading.value))
    counts, sums = privacy.exact(query, rows, *bounds)
    values = privacy.release(query, counts, sums, *bounds)
    return json_response({
        "dataset": dataset, "attribute": iri, "statistic": statistic, "epsilon": epsilon,
        "mechanism": "laplace", "clamp": list(bounds),
        "groups": [{**query.describe(g), "value": v} for g, v in enumerate(values)],
        "budget": _budget(state),
    })
