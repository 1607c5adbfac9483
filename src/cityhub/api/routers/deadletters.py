"""/ingest/v1/dead-letters: messages the hub or an edge refused, newest first, with the reason.

Refused payloads may carry device keys: reading them needs the `inspect` permission on the
device registry (staff, services, stewards; policies/services.cedar)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cityhub.api.deps import WriteTenant
from cityhub.api.ldio import json_response
from cityhub.api.routers.devices import hub
from cityhub.api.service_access import allow, registry_resource

router = APIRouter(prefix="/ingest/v1", tags=["ingestion"])


@router.get("/dead-letters", summary="Refused messages with their reasons (newest first)")
async def dead_letters(
    request: Request, tenant: WriteTenant,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    device: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    await run_in_threadpool(allow, request, "inspect", registry_resource(tenant))
    letters, total = await run_in_threadpool(hub(request).dead_letters, tenant, limit, offset,
                                             device)
    return json_response({"total": total, "items": letters})
