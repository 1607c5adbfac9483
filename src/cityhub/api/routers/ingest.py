"""/ingest/v1: measurements posted by devices over HTTP, and batches forwarded by edge agents
(measurements, window aggregates, alerts, dead letters, and `unverified` messages of devices
the edge did not know, checked here like a device's own post). Refused messages are dead-lettered
with the reason and answered with a problem detail; accepted ones are acknowledged with counts.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cityhub.api.deps import SettingsDep, WriteTenant
from cityhub.api.ldio import json_response
from cityhub.api.routers.devices import Unauthorized, check_edge_token, hub
from cityhub.devices.hub import DeviceHub, IngestResult, Letters
from cityhub.devices.messages import MAX_PAYLOAD, Measurement
from cityhub.ngsild.errors import BadRequestData

router = APIRouter(prefix="/ingest/v1", tags=["ingestion"])
MAX_BATCH_BODY = 64 * 1024 * 1024


def _counts(result: IngestResult) -> dict[str, Any]:
    return {"accepted": result.accepted, "duplicates": result.duplicates,
            "rejected": result.rejected}


@router.post("/devices/{device_id}/measurements", status_code=202,
             summary="A device posts one measurement (JSON envelope or its decoder's format)")
async def device_measurement(
    device_id: str, request: Request, tenant: WriteTenant,
    authorization: Annotated[str | None, Header(description="Bearer <device token>")] = None,
) -> Response:
    raw = await request.body()
    key = authorization.removeprefix("Bearer ").strip() if authorization else None
    result = await run_in_threadpool(hub(request).ingest_raw, tenant, device_id[:128],
                                     raw[: MAX_PAYLOAD + 1], key, "http")
    if result.rejected:
        reason = result.reasons[0] if result.reasons else "refused"
        if "credential" in reason or "revoked" in reason or "unknown device" in reason:
            raise Unauthorized(f"dead-lettered: {reason}")
        raise BadRequestData(f"dead-lettered: {reason}")
    return json_response(_counts(result), status=202)


def apply_batch(devices: DeviceHub, tenant: str, body: Any, source: str,
                batch: str | None = None) -> IngestResult:
    """One edge batch (see module docstring); malformed items dead-letter one by one.

    `batch` is the edge's id of the batch (`<edge>:<outbox>:<first>-<last>`, the same over
    HTTP and JetStream). Measurements are idempotent by message id and alerts by their
    entity ids; the batch's dead letters (refused at the edge, malformed, refused here) are
    stored in the one transaction that records the batch as handled, so a batch that comes
    again (a redelivery after a crash, a retry after a lost answer) is skipped whole, or, if
    its first try died before that record, redone once. The device checks (unknown or
    revoked devices, bad credentials) add their refusals to the batch's dead letters."""
    if not isinstance(body, dict):
        raise BadRequestData("a batch is a JSON object")
    if batch is not None and devices.batch_handled(batch):
        return IngestResult(duplicates=len(_items(body, "measurements"))
                            + len(_items(body, "aggregates")))
    measurements: list[Measurement] = []
    refused: Letters = []
    for item in [*_items(body, "measurements"), *_items(body, "aggregates")]:
        try:
            measurement = Measurement.from_json(item)
            if measurement.tenant != tenant:
                raise ValueError("tenant differs from the batch's")
            measurements.append(measurement)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            refused.append((tenant, str(item.get("device", "?"))[:128] if isinstance(item, dict)
                            else "?", source, f"malformed batch item: {error}",
                            orjson.dumps(item)))
    for letter in _items(body, "deadLetters"):
        if isinstance(letter, dict):
            refused.append((tenant, str(letter.get("device", "?")),
                            f"{source}:{letter.get('source', 'edge')}",
                            str(letter.get("reason", "refused at the edge")),
                            str(letter.get("payload", "")).encode("utf-8", "replace")))
    result = (devices.ingest(tenant, measurements, source, refused) if measurements
              else IngestResult())
    unverified = [_unverified(item, refused, tenant, source)
                  for item in _items(body, "unverified")]
    known = devices.registered(tenant, sorted({d for d, p in unverified if p is not None}))
    for device_id, payload in unverified:
        if payload is None:
            continue
        if device_id not in known:  # the common case (a flood of garbage): one write for all
            refused.append((tenant, device_id, f"{source}:mqtt", "unknown device", payload))
            result.rejected += 1
            continue
        result.add(devices.ingest_raw(tenant, device_id, payload, None, f"{source}:mqtt",
                                      refused))
    alerts = [a for a in _items(body, "alerts") if isinstance(a, dict)]
    if alerts:
        devices.raise_alerts(tenant, alerts)
    devices.dead_letter(refused, batch)
    return result


def _unverified(item: Any, refused: Letters, tenant: str,
                source: str) -> tuple[str, bytes | None]:
    """A message of a device the edge did not know: (device, raw payload), or refused."""
    device_id = str(item.get("device", "?"))[:128] if isinstance(item, dict) else "?"
    try:
        return device_id, base64.b64decode(str(item["payload"]), validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as error:
        refused.append((tenant, device_id, source, f"malformed batch item: {error}",
                        orjson.dumps(item)))
        return device_id, None


def _items(body: dict[str, Any], key: str) -> list[Any]:
    items = body.get(key, [])
    if not isinstance(items, list):
        raise BadRequestData(f"{key} must be an array")
    return items


@router.post("/batch", summary="An edge agent forwards a batch; answered once it is durable")
async def edge_batch(
    request: Request, tenant: WriteTenant, settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    cityhub_batch: Annotated[str | None, Header(
        max_length=256, description="The edge's id of the batch: a batch posted again "
        "after a lost answer is then skipped whole (see docs/edge.md)")] = None,
) -> Response:
    check_edge_token(settings, authorization)
    raw = await request.body()
    if len(raw) > MAX_BATCH_BODY:
        raise BadRequestData(f"batch larger than {MAX_BATCH_BODY} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequestData(f"batch is not JSON: {error.msg}") from None
    result = await run_in_threadpool(apply_batch, hub(request), tenant, body, "edge",
                                     cityhub_batch)
    return json_response(_counts(result))
