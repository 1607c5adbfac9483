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

from cityhub.api.deps import SettingsDep, WriteTenant
from cityhub.api.governance_state import DATASET_ID, catalogued, history_reader, record, whole_store
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


def _space(request: Request, bbox: str | None, cell: float, areas: str | None
           ) -> privacy.Space:
    if (bbox is None) == (areas is None):
        raise BadRequestData("group by a grid (bbox, cell) or by named areas (areas), not both "
                             "nor neither")
    if bbox is not None:
        return privacy.Grid(*_parse_bbox(bbox), cell)
    declared: list[privacy.Area] = request.app.state.privacy_areas
    if areas == "*":
        return privacy.Areas(declared)
    wanted = [a for a in (areas or "").split(",") if a]
    by_id = {a.id: a for a in declared}
    unknown = [a for a in wanted if a not in by_id]
    if unknown:
        raise BadRequestData(f"no declared area {unknown[0]!r} (see /privacy/areas)")
    return privacy.Areas([by_id[a] for a in dict.fromkeys(wanted)])


@router.get("/areas", summary="The named areas (districts) private aggregates may be grouped by")
def areas(request: Request) -> Response:
    declared: list[privacy.Area] = request.app.state.privacy_areas
    return json_response([{"id": a.id, "name": a.name,
                           "polygon": [list(p) for p in a.polygon.exterior.coords]}
                          for a in declared])


@router.get("/datasets/{dataset}/aggregate",
            summary="Count, sum or mean of a numeric attribute per grid cell or named area and "
            "time bucket, under differential privacy with one device as the privacy unit "
            "(spends epsilon from the dataset's budget)")
def aggregate(
    request: Request,
    settings: SettingsDep,
    temporal: Annotated[TemporalStore, Depends(history_reader)],
    tenant: WriteTenant,
    dataset: DatasetId,
    attribute: Annotated[str, Query(min_length=1, max_length=256, pattern=r"^[^\s<>\"']+$",
                                    description="Numeric attribute (short name or IRI)")],
    statistic: Annotated[Literal["count", "sum", "mean"], Query()],
    epsilon: Annotated[float, Query(gt=0, le=100, description="Privacy loss of this answer")],
    start: Annotated[datetime, Query(description="Start of the first bucket (ISO 8601)")],
    end: Annotated[datetime, Query(description="End of the time range (ISO 8601)")],
    bbox: Annotated[str | None, Query(max_length=200, description="Grid: west,south,east,"
                                      "north (WGS84)")] = None,
    cell: Annotated[float, Query(gt=0, le=10, description="Grid cell size in degrees")] = 0.01,
    areas: Annotated[str | None, Query(max_length=2000, pattern=r"^(\*|[A-Za-z0-9_.\-,]+)$",
                                       description="Named areas: ids, comma-separated, or * "
                                       "for every declared area")] = None,
    bucket: Annotated[int, Query(ge=60, le=31 * 86400, description="Bucket in seconds")] = 3600,
    contributions: Annotated[int, Query(ge=1, le=privacy.MAX_CONTRIBUTIONS, description=(
        "k: readings each device contributes to a bucket at most"))] = 10,
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
    try:
        query = privacy.AggregateQuery(statistic, iri, epsilon, _space(request, bbox, cell, areas),
                                       _utc(start), _utc(end), timedelta(seconds=bucket),
                                       contributions)
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
                                       "epsilon": epsilon, "contributions": contributions,
                                       "groups": query.groups}))
    rows = []
    for entity in observations.entities(whole_store(request), found):
        where = observations.point(entity)
        if where is None or query.space.place(*where) is None:
            continue
        device = observations.device_of(entity)
        for reading in observations.readings(temporal, tenant, entity, iri, query.start,
                                             query.end):
            rows.append((device, where[0], where[1], reading.at, reading.value))
    counts, sums = privacy.exact(query, rows, *bounds)
    values = privacy.release(query, counts, sums, *bounds)
    return json_response({
        "dataset": dataset, "attribute": iri, "statistic": statistic, "epsilon": epsilon,
        "mechanism": "laplace", "clamp": list(bounds), "privacyUnit": "device",
        "contributions": contributions, "sensitivity": {
            "count": query.count_sensitivity, "sum": query.sum_sensitivity(*bounds)},
        "groups": [{**query.describe(g), "value": v} for g, v in enumerate(values)],
        "budget": _budget(state),
    })
