"""/subscriptions through the app, and notifications POSTed to a real HTTP receiver.

The receiver is a `http.server` on a free port in a thread; the hub runs in-process with its
notifier (the lifespan wiring of app.py, or the same wiring done here until app.py has it).
Waiting for a notification polls the receiver with a deadline; whether a change queued a
notification is read from the store right after the write, which is final (queueing happens in
the write transaction), so "nothing is sent" needs no sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from cityhub.api import notifier
from cityhub.api.app import create_app
from cityhub.config import Settings

BASE = "/ngsi-ld/v1"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
FAST = notifier.NotifierConfig(workers=4, timeout_s=2.0, poll_s=0.05, retry_base_s=0.1,
                               retry_max_s=0.4, sweep_every_s=1.0)


# -- a real HTTP receiver --------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class Receiver:
    """Records every POST; answers 500 to the next `fail_next` ones (or all, with `down`)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.fail_next = 0
        self.down = False
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = receiver._take(Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()},
                    orjson.loads(raw)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/notify"

    def _take(self, item: Received) -> int:
        with self._cond:
            self.received.append(item)
            failing = self.down or self.fail_next > 0
            if self.fail_next > 0:
                self.fail_next -= 1
            self._cond.notify_all()
        return 500 if failing else 204

    def wait_for(self, done: Callable[[list[Received]], bool], timeout: float = 20.0
                 ) -> list[Received]:
        """Block until `done(received)` holds, looking again at each POST and every 20 ms
        (`done` may also read the store); a failure after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done(self.received):
                if time.monotonic() > deadline:
                    raise AssertionError(f"receiver got {len(self.received)} posts: "
                                         f"{[r.body for r in self.received][-3:]}")
                self._cond.wait(0.02)
            return list(self.received)

    async def until(self, done: Callable[[list[Received]], bool]) -> list[Received]:
        return await asyncio.to_thread(self.wait_for, done)

    def data(self) -> list[dict[str, Any]]:
        """Every entity of every successfully answered notification, in arrival order."""
        with self._cond:
            return [item for r in self.received for item in r.body["data"]]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


# -- the hub -------------------------------------------------------------------------------


@dataclass
class Hub:
    app: FastAPI
    http: httpx.AsyncClient

    def pending(self, sub_id: str, tenant: str = "") -> int:
        count: int = self.app.state.subscriptions.pending_count(tenant, sub_id)
        return count


async def open_hub(settings: Settings, stack: AsyncExitStack) -> Hub:
    """The app with its lifespan, subscriptions and a fast notifier."""
    app = create_app(settings)
    app.state.notifier_config = FAST
    await stack.enter_async_context(app.router.lifespan_context(app))
    if getattr(app.state, "subscriptions", None) is None:  # app.py does not wire it (yet)
        await stack.enter_async_context(notifier.running(app))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    await stack.enter_async_context(http)
    return Hub(app, http)


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    async with AsyncExitStack() as stack:
        yield await open_hub(settings, stack)


def subscription(uri: str, n: int = 1, **members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Subscription:{n}",
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": uri}},
    }
    for key, value in members.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def vehicle(n: int = 1, speed: float = 10.0, **extra: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Vehicle:{n}", "type": "Vehicle",
            "speed": {"type": "Property", "value": speed},
            "brand": {"type": "Property", "value": "Seat"}, **extra}


async def subscribe(hub: Hub, body: dict[str, Any], **headers: str) -> None:
    response = await hub.http.post(f"{BASE}/subscriptions", json=body, headers=headers)
    assert response.status_code == 201, response.text


async def create(hub: Hub, body: dict[str, Any], **headers: str) -> None:
    response = await hub.http.post(f"{BASE}/entities", json=body, headers=headers)
    assert response.status_code == 201, response.text


async def patch_attrs(hub: Hub, n: int = 1, tenant: str = "", **attrs: Any) -> None:
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    response = await hub.http.patch(
        f"{BASE}/entities/urn:ngsi-ld:Vehicle:{n}/attrs",
        json={k: {"type": "Property", "value": v} for k, v in attrs.items()}, headers=headers)
    assert response.status_code == 204, response.text


async def get_subscription(hub: Hub, n: int = 1, **headers: str) -> dict[str, Any]:
    response = await hub.http.get(f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:{n}",
                                  headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def in_future(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


# -- CRUD ------------------------------------------------------------------------------------


async def test_create_answers_201_with_location_and_get_shows_status(
    hub: Hub, receiver: Receiver
) -> None:
    response = await hub.http.post(f"{BASE}/subscriptions",
                                   json=subscription(receiver.url, q="speed>1"))
    assert response.status_code == 201
    assert response.headers["location"] == f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:1"
    shown = await get_subscription(hub)
    assert shown["q"] == "speed>1"
    assert shown["status"] == "active"
    assert shown["notification"]["timesSent"] == 0
    assert shown["notification"]["endpoint"] == {"uri": receiver.url,
                                                 "accept": "application/json"}


async def test_create_without_id_generates_one(hub: Hub, receiver: Receiver) -> None:
    response = await hub.http.post(f"{BASE}/subscriptions",
                                   json=subscription(receiver.url, id=None))
    assert response.status_code == 201
    assert response.headers["location"].startswith(f"{BASE}/subscriptions/urn:ngsi-ld:Sub")


async def test_list_pages_and_counts(hub: Hub, receiver: Receiver) -> None:
    for n in range(1, 6):
        await subscribe(hub, subscription(receiver.url, n))
    response = await hub.http.get(f"{BASE}/subscriptions",
                                  params={"limit": 2, "offset": 1, "count": "true"})
    assert response.status_code == 200
    assert response.headers["ngsild-results-count"] == "5"
    assert [s["id"] for s in response.json()] == [
        "urn:ngsi-ld:Subscription:2", "urn:ngsi-ld:Subscription:3"]
    assert (await hub.http.get(f"{BASE}/subscriptions", params={"limit": 0})).status_code == 400


async def test_patch_then_delete(hub: Hub, receiver: Receiver) -> None:
    await subscribe(hub, subscription(receiver.url))
    url = f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:1"
    response = await hub.http.patch(url, json={"q": "speed>5", "throttling": 2})
    assert response.status_code == 204, response.text
    shown = await get_subscription(hub)
    assert (shown["q"], shown["throttling"]) == ("speed>5", 2)
    assert (await hub.http.patch(url, json={"q": "speed>>"})).status_code == 400
    assert (await hub.http.delete(url)).status_code == 204
    missing = await hub.http.get(url)
    assert missing.status_code == 404
    assert missing.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
    assert (await hub.http.delete(url)).status_code == 404
    assert (await hub.http.patch(url, json={"q": "a>1"})).status_code == 404


async def test_the_same_id_twice_is_already_exists(hub: Hub, receiver: Receiver) -> None:
    await subscribe(hub, subscription(receiver.url))
    response = await hub.http.post(f"{BASE}/subscriptions", json=subscription(receiver.url))
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("members", "status"),
    [
        ({"q": "speed>>1"}, 400),
        ({"geoQ": {"georel": "nearby", "geometry": "Point", "coordinates": [1, 2]}}, 400),
        ({"geoQ": {"georel": "near;maxDistance==10", "geometry": "Point",
                   "coordinates": [1]}}, 400),
        ({"entities": [{"type": ["Vehicle"]}]}, 400),
        ({"entities": [{"type": "Vehicle;;Bus"}]}, 400),
        ({"notification": {"endpoint": {}}}, 400),
        ({"notification": {"endpoint": {"uri": "not a uri"}}}, 400),
        ({"expiresAt": "2020-01-01T00:00:00Z"}, 400),
        ({"type": "Entity"}, 400),
        ({"timeInterval": 5, "throttling": 1}, 400),
        ({"notification": {"endpoint": {"uri": "mqtt://broker:1883/t"}}}, 422),
    ],
)
async def test_invalid_subscriptions_are_problems(
    hub: Hub, receiver: Receiver, members: dict[str, Any], status: int
) -> None:
    response = await hub.http.post(f"{BASE}/subscriptions",
                                   json=subscription(receiver.url, **members))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    kind = "BadRequestData" if status == 400 else "OperationNotSupported"
    assert response.json()["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{kind}"


async def test_a_body_that_is_not_json_is_invalid_request(hub: Hub) -> None:
    response = await hub.http.post(f"{BASE}/subscriptions", content=b"{",
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["type"].endswith("InvalidRequest")


# -- notifications ---------------------------------------------------------------------------


async def test_create_and_update_are_notified_with_link_header(
    hub: Hub, receiver: Receiver
) -> None:
    await subscribe(hub, subscription(
        receiver.url, notification={"endpoint": {
            "uri": receiver.url, "receiverInfo": [{"key": "X-Api-Key", "value": "k1"}]}}))
    await create(hub, vehicle(speed=10))
    await patch_attrs(hub, speed=20)
    got = await receiver.until(lambda r: len(r) >= 2)
    first = got[0]
    assert first.body["type"] == "Notification"
    assert first.body["subscriptionId"] == "urn:ngsi-ld:Subscription:1"
    assert first.body["id"].startswith("urn:ngsi-ld:Notification:")
    assert [r.body["data"][0]["speed"]["value"] for r in got] == [10, 20]
    assert first.headers["content-type"] == "application/json"
    assert f"<{CORE}>" in first.headers["link"]
    assert first.headers["x-api-key"] == "k1"
    assert "ngsild-tenant" not in first.headers
    assert "@context" not in first.body
    await receiver.until(lambda r: hub.pending("urn:ngsi-ld:Subscription:1") == 0)  # recorded
    shown = await get_subscription(hub)
    assert shown["notification"]["timesSent"] == 2
    assert shown["notification"]["status"] == "ok"
    assert shown["notification"]["lastSuccess"] == shown["notification"]["lastNotification"]


async def test_ld_json_key_values_and_attribute_selection(hub: Hub, receiver: Receiver) -> None:
    context = {"@context": {"sp": "https://uri.etsi.org/ngsi-ld/default-context/speed"}}
    await subscribe(hub, {**subscription(receiver.url, notification={
        "format": "keyValues", "attributes": ["sp"],
        "endpoint": {"uri": receiver.url, "accept": "application/ld+json"}}), **context},
        **{"Content-Type": "application/ld+json"})
    await create(hub, vehicle(speed=33))
    got = await receiver.until(lambda r: len(r) >= 1)
    assert got[0].body["data"] == [{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "sp": 33}]
    assert got[0].body["@context"] == context["@context"]
    assert got[0].headers["content-type"] == "application/ld+json"


async def test_an_inline_context_is_linked_and_geojson_is_a_feature_collection(
    hub: Hub, receiver: Receiver
) -> None:
    context = {"@context": {"sp": "https://uri.etsi.org/ngsi-ld/default-context/speed"}}
    await subscribe(hub, {**subscription(receiver.url, notification={
        "endpoint": {"uri": receiver.url, "accept": "application/geo+json"}}), **context},
        **{"Content-Type": "application/ld+json"})
    await create(hub, vehicle(speed=3, location={
        "type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.1, 41.4]}}))
    got = await receiver.until(lambda r: len(r) >= 1)
    data = got[0].body["data"]
    assert data["type"] == "FeatureCollection"
    feature = data["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [2.1, 41.4]}
    assert feature["properties"]["sp"] == {"type": "Property", "value": 3}
    assert got[0].headers["content-type"] == "application/geo+json"
    hosted = got[0].headers["link"].split(">")[0].lstrip("<")
    assert "/jsonldContexts/" in hosted
    served = await hub.http.get(hosted.removeprefix("http://testserver"))
    assert served.json()["@context"] == context["@context"]


async def test_q_and_watched_attributes_decide_what_is_sent(hub: Hub, receiver: Receiver) -> None:
    await subscribe(hub, subscription(receiver.url, 1, q="speed>30",
                                      watchedAttributes=["speed"]))
    await subscribe(hub, subscription(receiver.url, 2))  # a sentinel: every change
    await create(hub, vehicle(speed=10))  # q does not hold
    await patch_attrs(hub, brand="Fiat")  # not watched
    await patch_attrs(hub, speed=20)  # q does not hold
    assert hub.pending("urn:ngsi-ld:Subscription:1") == 0
    await patch_attrs(hub, speed=40)
    got = await receiver.until(lambda r: len(r) >= 5)
    await receiver.until(lambda r: hub.pending("urn:ngsi-ld:Subscription:1") == 0)
    mine = [r.body["data"][0] for r in receiver.received
            if r.body["subscriptionId"] == "urn:ngsi-ld:Subscription:1"]
    assert [d["speed"]["value"] for d in mine] == [40]
    assert len(got) == 5


async def test_a_failing_endpoint_is_retried_and_status_kept(
    hub: Hub, receiver: Receiver
) -> None:
    receiver.fail_next = 2
    await subscribe(hub, subscription(receiver.url))
    await create(hub, vehicle())
    got = await receiver.until(lambda r: len(r) >= 3)
    assert len({r.body["id"] for r in got}) == 1  # the same notification, three times
    await receiver.until(lambda r: hub.pending("urn:ngsi-ld:Subscription:1") == 0)
    shown = (await get_subscription(hub))["notification"]
    assert (shown["timesSent"], shown["timesFailed"], shown["status"]) == (3, 2, "ok")
    assert shown["lastFailure"] < shown["lastSuccess"] == shown["lastNotification"]


async def test_a_dead_endpoint_is_marked_failed_and_keeps_the_change(
    hub: Hub, receiver: Receiver
) -> None:
    receiver.down = True
    await subscribe(hub, subscription(receiver.url))
    await create(hub, vehicle())
    await receiver.until(lambda r: len(r) >= 2)
    shown = (await get_subscription(hub))["notification"]
    assert shown["status"] == "failed"
    assert shown["timesFailed"] >= 1
    assert "lastSuccess" not in shown
    assert hub.pending("urn:ngsi-ld:Subscription:1") == 1
    receiver.down = False
    await receiver.until(lambda r: hub.pending("urn:ngsi-ld:Subscription:1") == 0)
    assert (await get_subscription(hub))["notification"]["status"] == "ok"


def test_retry_delays_double_up_to_the_maximum() -> None:
    config = notifier.NotifierConfig(retry_base_s=1.0, retry_max_s=5.0)
    assert [notifier.retry_delay(config, n) for n in (1, 2, 3, 4, 9)] == [1, 2, 4, 5, 5]


async def test_throttling_coalesces_changes_into_the_next_notification(
    hub: Hub, receiver: Receiver
) -> None:
    await subscribe(hub, subscription(receiver.url, throttling=3))
    await create(hub, vehicle(speed=0))
    await receiver.until(lambda r: len(r) >= 1)
    for speed in (1, 2, 3):
        await patch_attrs(hub, speed=speed)
    got = await receiver.until(lambda r: len(r) >= 2)
    assert [d["speed"]["value"] for d in got[1].body["data"]] == [1, 2, 3]
    await receiver.until(lambda r: hub.pending("urn:ngsi-ld:Subscription:1") == 0)


async def test_time_interval_sends_the_current_entities(hub: Hub, receiver: Receiver) -> None:
    await create(hub, vehicle(1, speed=5))
    await create(hub, vehicle(2, speed=50))
    await subscribe(hub, subscription(receiver.url, timeInterval=0.3, q="speed>10"))
    await patch_attrs(hub, 2, speed=60)  # changes are not what a periodic subscription sends
    got = await receiver.until(lambda r: len(r) >= 2)
    for notification in got[:2]:
        assert [(d["id"], d["speed"]["value"]) for d in notification.body["data"]] == [
            ("urn:ngsi-ld:Vehicle:2", 60)]
    assert got[0].body["id"] != got[1].body["id"]


async def test_inactive_and_expired_subscriptions_send_nothing(
    hub: Hub, receiver: Receiver
) -> None:
    await subscribe(hub, subscription(receiver.url, 1, isActive=False))
    await subscribe(hub, subscription(receiver.url, 2, expiresAt=in_future(0.5)))
    await asyncio.sleep(0.6)  # let the second one expire (time passing, not measured)
    await create(hub, vehicle())
    assert hub.pending("urn:ngsi-ld:Subscription:1") == 0
    assert hub.pending("urn:ngsi-ld:Subscription:2") == 0
    assert (await get_subscription(hub, 2))["status"] == "expired"
    url = f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:1"
    assert (await hub.http.patch(url, json={"isActive": True})).status_code == 204
    await patch_attrs(hub, speed=99)
    got = await receiver.until(lambda r: len(r) >= 1)
    assert {r.body["subscriptionId"] for r in got} == {"urn:ngsi-ld:Subscription:1"}
    await receiver.until(lambda r: hub.pending("urn:ngsi-ld:Subscription:1") == 0)  # recorded
    assert (await hub.http.patch(url, json={"isActive": False})).status_code == 204
    await patch_attrs(hub, speed=100)
    assert hub.pending("urn:ngsi-ld:Subscription:1") == 0


async def test_tenants_are_isolated(hub: Hub, receiver: Receiver) -> None:
    await subscribe(hub, subscription(receiver.url), **{"NGSILD-Tenant": "north"})
    await create(hub, vehicle(), **{"NGSILD-Tenant": "south"})
    await patch_attrs(hub, tenant="south", speed=1)
    assert hub.pending("urn:ngsi-ld:Subscription:1", "north") == 0
    assert (await hub.http.get(f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:1",
                               headers={"NGSILD-Tenant": "south"})).status_code == 404
    assert (await hub.http.get(f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:1")
            ).status_code == 404
    await create(hub, vehicle(), **{"NGSILD-Tenant": "north"})
    got = await receiver.until(lambda r: len(r) >= 1)
    assert got[0].headers["ngsild-tenant"] == "north"
    assert len(got) == 1
