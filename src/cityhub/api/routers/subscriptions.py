"""/subscriptions: create, query, retrieve, update and delete NGSI-LD subscriptions (5.8)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cityhub.api import openapi as api
from cityhub.api.auth import owned_subscriptions
from cityhub.api.deps import ReadTenant, WriteTenant
from cityhub.api.ldio import AcceptHeader, LinkContext, ld_response, negotiate, read_json
from cityhub.api.query_params import MAX_OFFSET
from cityhub.ngsild.errors import BadRequestData, ResourceNotFound
from cityhub.ngsild.subscription import apply_patch, parse_subscription, render_subscription
from cityhub.store.service import utc_now
from cityhub.store.subscriptions import StoredSubscription, SubscriptionStore

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])
SubscriptionId = Annotated[str, "the subscription id (a URI)"]
SUBSCRIPTION: api.Schema = {
    "type": "object",
    "required": ["type", "notification"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "Subscription"},
        "entities": {"type": "array", "items": {"type": "object"}},
        "watchedAttributes": {"type": "array", "items": {"type": "string"}},
        "q": {"type": "string"},
        "geoQ": {"type": "object"},
        "notification": {"type": "object"},
        "throttling": {"type": "number"},
        "timeInterval": {"type": "number"},
        "expiresAt": {"type": "string"},
        "isActive": {"type": "boolean"},
    },
}
_ONE = api.json_content(SUBSCRIPTION, "The subscription with its status", api.JSON, api.LD_JSON)
_MANY = api.json_content({"type": "array", "items": SUBSCRIPTION}, "A page of subscriptions",
                         api.JSON, api.LD_JSON)


async def get_subscriptions(request: Request) -> SubscriptionStore:
    subscriptions: SubscriptionStore = request.app.state.subscriptions
    owned: SubscriptionStore = owned_subscriptions(request, subscriptions)  # the principal's
    return owned


SubscriptionsDep = Annotated[SubscriptionStore, Depends(get_subscriptions)]


def _existing(subscriptions: SubscriptionStore, tenant: str, sub_id: str) -> StoredSubscription:
    stored = subscriptions.get(tenant, sub_id)
    if stored is None:
        raise ResourceNotFound(f"subscription {sub_id} does not exist", instance=sub_id)
    return stored


@router.post("", status_code=201, summary="Create a subscription",
             responses=api.responses(400, 409, 415, 422, 503,
                                     status_201={"description": "Created; Location names it"}),
             openapi_extra=api.request_body(SUBSCRIPTION, "The subscription"))
async def create_subscription(
    request: Request, tenant: WriteTenant, subscriptions: SubscriptionsDep
) -> Response:
    body, ctx = await read_json(request)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "@context"}
    subscription = parse_subscription(body, ctx.terms, context=ctx.value, now=utc_now())
    await run_in_threadpool(subscriptions.create, tenant, subscription, utc_now())
    location = f"/ngsi-ld/v1/subscriptions/{quote(subscription.id, safe=':')}"
    return Response(status_code=201, headers={"Location": location})


@router.get("", summary="Query subscriptions",
            responses=api.responses(400, 404, 406, status_200=_MANY))
def query_subscriptions(
    tenant: ReadTenant,
    subscriptions: SubscriptionsDep,
    ctx: LinkContext,
    request: Request,
    accept: AcceptHeader,
    limit: Annotated[int, Query(ge=0, description="Page size (default 20)")] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Subscriptions to skip")] = 0,
    count: Annotated[bool, Query(description="Return NGSILD-Results-Count")] = False,
) -> Response:
    media = negotiate(accept, geo=False)
    max_limit = request.app.state.settings.max_limit
    if limit > max_limit:
        raise BadRequestData(f"limit {limit} is above the maximum {max_limit}")
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    page, total = subscriptions.page(tenant, limit, offset)
    now = utc_now()
    data = [render_subscription(s.subscription, s.state, now) for s in page]
    headers = {"NGSILD-Results-Count": str(total)} if count else {}
    return ld_response(data, ctx, media, headers=headers)


@router.get("/{subscriptionId}", summary="Retrieve a subscription",
            responses=api.responses(400, 404, 406, status_200=_ONE))
def retrieve_subscription(
    subscriptionId: SubscriptionId,
    tenant: ReadTenant,
    subscriptions: SubscriptionsDep,
    ctx: LinkContext,
    accept: AcceptHeader,
) -> Response:
    media = negotiate(accept, geo=False)
    stored = _existing(subscriptions, tenant, subscriptionId)
    return ld_response(render_subscription(stored.subscription, stored.state, utc_now()),
                       ctx, media)


@router.patch("/{subscriptionId}", status_code=204, summary="Update a subscription",
              response_class=Response, responses=api.responses(400, 404, 415, 422, 503),
              openapi_extra=api.request_body({"type": "object"}, "Members to change"))
async def update_subscription(
    subscriptionId: SubscriptionId,
    request: Request,
    tenant: ReadTenant,
    subscriptions: SubscriptionsDep,
) -> Response:
    body, ctx = await read_json(request)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "@context"}
    now = utc_now()
    await run_in_threadpool(
        subscriptions.update,
        tenant, subscriptionId, lambda current: apply_patch(current, body, ctx.terms, now=now),
        now,
    )
    return Response(status_code=204)


@router.delete("/{subscriptionId}", status_code=204, summary="Delete a subscription",
               response_class=Response, responses=api.responses(400, 404))
def delete_subscription(
    subscriptionId: SubscriptionId,
    tenant: ReadTenant,
    subscriptions: SubscriptionsDep,
) -> Response:
    subscriptions.delete(tenant, subscriptionId)
    return Response(status_code=204)
