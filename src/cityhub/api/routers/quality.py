"""Data quality scores per dataset and the share of datasets that pass the bar.

Any authenticated principal but a device may read them (action `score` of
policies/services.cedar); the list holds the datasets the caller may score."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from cityhub.api.deps import SettingsDep, WriteTenant
from cityhub.api.governance_state import DATASET_ID, catalogued, history_reader, whole_store
from cityhub.api.ldio import json_response
from cityhub.api.service_access import allow, dataset_resource, may
from cityhub.governance import quality
from cityhub.store.temporal import TemporalStore

router = APIRouter(prefix="/quality", tags=["quality"])


@router.get("", summary="Quality scores of every catalogued dataset and the share that pass")
def scores(request: Request, settings: SettingsDep, tenant: WriteTenant,
           temporal: Annotated[TemporalStore, Depends(history_reader)]) -> Response:
    now = datetime.now(UTC)
    found = [quality.score(whole_store(request), temporal, d, now, settings.quality_bar)
             for d in request.app.state.catalogue.datasets(tenant)
             if may(request, "score", dataset_resource(tenant, d))]
    return json_response({"bar": settings.quality_bar,
                          "sharePassing": round(quality.share_passing(found), 4),
                          "datasets": [s.as_dict() for s in found]})


@router.get("/datasets/{dataset}", summary="Quality scores of one dataset")
def dataset_score(
    request: Request, settings: SettingsDep, tenant: WriteTenant,
    temporal: Annotated[TemporalStore, Depends(history_reader)],
    dataset: Annotated[str, Path(pattern=DATASET_ID, description="Dataset id")],
) -> Response:
    found = catalogued(request, tenant, dataset)
    allow(request, "score", dataset_resource(tenant, found))
    result = quality.score(whole_store(request), temporal, found, datetime.now(UTC),
                           settings.quality_bar)
    return json_response({"bar": settings.quality_bar, **result.as_dict()})
