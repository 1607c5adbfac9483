"""/devices/v1: the device registry (register, list, show, revoke, reinstate, rotate the token)
and the registry export edge agents sync from (credential digests, guarded by the edge token).

Registering a device and managing it (revoke, reinstate, rotate) needs staff or a service of the
owning department, or a steward (action `register` of policies/services.cedar, the resource
being the registry of the device's owner); listing and showing devices need staff or a service
(action `inspect`)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cityhub.api.deps import SettingsDep, WriteTenant
from cityhub.api.ldio import json_response
from cityhub.api.service_access import allow, registry_resource
from cityhub.devices.hub import AlreadyRegistered, DeviceHub, UnknownDevice
from cityhub.devices.registry import InvalidDevice
from cityhub.ngsild.errors import AlreadyExists, BadRequestData, NgsiLdError, ResourceNotFound

router = APIRouter(prefix="/devices/v1", tags=["devices"])


class Unauthorized(NgsiLdError):
    """A device or edge credential is missing or wrong (RFC 9110: a 401 names its scheme)."""

    kind = "Unauthorized"
    status = 401
    title = "Unauthorized"
    headers: ClassVar[dict[str, str]] = {
        "WWW-Authenticate": 'Bearer realm="cityhub", error="invalid_token"'}


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(description="Device id, unique in the tenant (1-64 of A-Z a-z 0-9 _ - .).")
    type: str = Field(description="FIWARE Smart Data Models type, e.g. AirQualityObserved.")
    owner: str = Field(description="Owning department, e.g. ecology.")
    location: list[float] = Field(min_length=2, max_length=2,
                                  description="[longitude, latitude] (WGS84).")
    decoder: str = Field(default="json", description="Payload decoder: json or kv.")


def hub(request: Request) -> DeviceHub:
    found: DeviceHub = request.app.state.devices
    return found


def check_edge_token(settings: Any, authorization: str | None) -> None:
    """Edge-facing endpoints need `Authorization: Bearer <CITYHUB_EDGE_TOKEN>` when it is set."""
    if settings.edge_token is None:
        return
    expected = settings.edge_token.get_secret_value()
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("this endpoint needs the edge token (Authorization: Bearer ...)")


def _call(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except InvalidDevice as error:
        raise BadRequestData(str(error)) from None
    except AlreadyRegistered as error:
        raise AlreadyExists(str(error)) from None
    except UnknownDevice as error:
        raise ResourceNotFound(str(error)) from None


def _manage(request: Request, tenant: str, device_id: str) -> None:
    """Managing a device needs the `register` permission on its owner's registry."""
    record = _call(hub(request).get, tenant, device_id)
    allow(request, "register", registry_resource(tenant, record.owner))


@router.post("/devices", status_code=201, summary="Register a device; answers its token once")
async def register(body: Registration, request: Request, tenant: WriteTenant) -> Response:
    await run_in_threadpool(allow, request, "register", registry_resource(tenant, body.owner))
    record, token = await run_in_threadpool(
        _call, hub(request).register, tenant, body.id, body.type, body.owner,
        body.location[0], body.location[1], body.decoder)
    return json_response({**record.public(), "token": token}, status=201)


@router.get("/devices", summary="List registered devices")
async def list_devices(
    request: Request, tenant: WriteTenant,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    await run_in_threadpool(allow, request, "inspect", registry_resource(tenant))
    records = await run_in_threadpool(hub(request).devices, tenant, limit, offset)
    return json_response([r.public() for r in records])


@router.get("/devices/{device_id}", summary="One device and its last-seen state")
async def show(device_id: str, request: Request, tenant: WriteTenant) -> Response:
    await run_in_threadpool(allow, request, "inspect", registry_resource(tenant))
    record = await run_in_threadpool(_call, hub(request).get, tenant, device_id)
    return json_response(record.public())


@router.post("/devices/{device_id}/revoke", summary="Refuse the device's messages from now on")
async def revoke(device_id: str, request: Request, tenant: WriteTenant) -> Response:
    await run_in_threadpool(_manage, request, tenant, device_id)
    record = await run_in_threadpool(_call, hub(request).set_state, tenant, device_id, "revoked")
    return json_response(record.public())


@router.post("/devices/{device_id}/reinstate", summary="Accept a revoked device again")
async def reinstate(device_id: str, request: Request, tenant: WriteTenant) -> Response:
    await run_in_threadpool(_manage, request, tenant, device_id)
    record = await run_in_threadpool(_call, hub(request).set_state, tenant, device_id, "ok")
    return json_response(record.public())


@router.post("/devices/{device_id}/rotate", summary="Issue a new token; the old one stops")
async def rotate(device_id: str, request: Request, tenant: WriteTenant) -> Response:
    await run_in_threadpool(_manage, request, tenant, device_id)
    token = await run_in_threadpool(_call, hub(request).rotate, tenant, device_id)
    return json_response({"id": device_id, "token": token})


@router.get("/registry", summary="Every tenant's devices with credential digests (for edges)")
async def registry(
    request: Request, settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    check_edge_token(settings, authorization)
    records = await run_in_threadpool(hub(request).devices, None, 1_000_000, 0)
    return json_response([{**r.public(), "credential": r.credential} for r in records])
