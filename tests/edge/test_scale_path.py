"""The scale path end to end (issue 4, point 5): two hub processes (`cityhub serve`) on one
PostgreSQL with CITYHUB_BUS_URL on NATS JetStream, an edge agent forwarding through JetStream,
and a subscription matched from the bus by the shared durable consumers. Each test uses a bus
namespace of its own (its own stream, subjects and consumers), deleted afterwards."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from cityhub.cli.common import free_port
from tests.api.test_subscriptions import Receiver
from tests.conftest import need_service, pg_schema
from tests.edge.conftest import (
    EDGE_TOKEN,
    Device,
    Hub,
    publish_steadily,
    steward_headers,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
DEVICES = 6
RATE = 150.0  # messages per second over all devices
SECONDS = 8.0


@pytest.fixture
def namespace() -> Iterator[str]:
    need_service("NATS", "127.0.0.1", 4222)
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name

    async def drop() -> None:
        import nats

        connection = await nats.connect("nats://127.0.0.1:4222")
        try:
            await connection.jetstream().delete_stream(f"CITYHUB_{name}")
        finally:
            await connection.close()

    asyncio.run(drop())


@pytest.fixture
def two_hubs(tmp_path: Path, namespace: str) -> Iterator[tuple[list[Hub], str]]:
    with pg_schema("edge") as store_url:
        headers = steward_headers(store_url)
        hubs: list[Hub] = []
        try:
            for name in ("a", "b"):  # one after the other: the schema is created by the first
                env = {**os.environ, "CITYHUB_STORE_URL": store_url,
                       "CITYHUB_BUS_URL": f"nats://127.0.0.1:4222/{namespace}",
                       "CITYHUB_DATA_DIR": str(tmp_path / name), "CITYHUB_NOTIFY_WORKERS": "1",
                       "CITYHUB_AUTH": "enabled", "CITYHUB_EDGE_TOKEN": EDGE_TOKEN}
                hubs.append(Hub(free_port("127.0.0.1", 0), tmp_path / "unused.db", env,
                                tmp_path / f"hub-{name}.log", headers=headers))
                hubs[-1].start()
            yield hubs, store_url
        finally:
            for hub in hubs:
                hub.stop()


def consumed(store_url: str, consumer: str) -> list[tuple[str, str]]:
    """(message id, hub process) of every bus message the durable consumer handled."""
    with psycopg.connect(store_url) as conn:
        return [(r[0], r[1]) for r in conn.execute(
            "SELECT msg_id, consumed_by FROM bus_consumed WHERE consumer = %s",
            (consumer,)).fetchall()]


def history(store_url: str, tenant: str) -> dict[str, int]:
    iri = "https://uri.etsi.org/ngsi-ld/default-context/pm25"
    with psycopg.connect(store_url) as conn:
        return {r[0]: r[1] for r in conn.execute(
            "SELECT entity_id, count(*) FROM attr_history WHERE tenant = %s AND attr = %s "
            "AND deleted = 0 GROUP BY entity_id", (tenant, iri)).fetchall()}


def relayed(store_url: str, namespace: str) -> bool:
    """Every committed change published, and taken and acknowledged by the subscriptions'
    durable consumer."""
    with psycopg.connect(store_url) as conn:
        if conn.execute("SELECT count(*) FROM bus_outbox").fetchone()[0]:  # type: ignore[index]
            return False

    async def idle() -> bool:
        import nats

        connection = await nats.connect("nats://127.0.0.1:4222")
        try:
            info = await connection.jetstream().consumer_info(f"CITYHUB_{namespace}",
                                                              "cityhub-subscriptions")
            return bool(info.num_pending == 0 and info.num_ack_pending == 0)
        finally:
            await connection.close()

    return asyncio.run(idle())


def test_two_hubs_share_the_bus_work_and_notify_each_change_once(
        mosquitto: None, two_hubs: tuple[list[Hub], str], namespace: str, tenant: str,
        tmp_path: Path, agent_factory: Any) -> None:
    (a, b), store_url = two_hubs
    receiver = Receiver()
    devices = [Device(tenant, f"aq-{n}", a.register(f"aq-{n}", "AirQualityObserved", tenant))
               for n in range(DEVICES)]
    subscription = httpx.post(f"{b.url}/ngsi-ld/v1/subscriptions", json={
        "id": f"urn:ngsi-ld:Subscription:{namespace}", "type": "Subscription",
        "entities": [{"type": "AirQualityObserved"}], "watchedAttributes": ["pm25"],
        "notification": {"endpoint": {"uri": receiver.url}}},
        headers={"NGSILD-Tenant": tenant, **a.headers}, timeout=10)
    assert subscription.status_code == 201, subscription.text
    agent = agent_factory(write_config(
        tmp_path / "edge.toml", hub_url=a.url, tenant=tenant, transport="nats",
        bus_url=f"nats://127.0.0.1:4222/{namespace}"))
    agent.start()
    for device in devices:
        device.connect()
    try:
        publish_steadily(devices, RATE, SECONDS)
        sent = {f"urn:ngsi-ld:AirQualityObserved:test:{d.device_id}": len(d.sent)
                for d in devices}
        # every message in the history exactly once (PostgreSQL, written by either hub)
        wait_for(lambda: history(store_url, tenant) == sent, 60, "every message in the history")
        ingested = consumed(store_url, "cityhub-ingest")
        assert len(ingested) == len({m for m, _ in ingested}) > 1
        assert len({hub for _, hub in ingested}) == 2, "one hub did all the ingest work"

        # one notification per change of a measurement entity, whichever hub matched it
        def changes() -> list[tuple[str, str]]:
            return [(m, hub) for m, hub in consumed(store_url, "cityhub-subscriptions")
                    if "|urn:ngsi-ld:AirQualityObserved:" in m]

        def notified() -> list[tuple[str, Any]]:
            return [(item["id"], item["pm25"]["observedAt"])
                    for r in receiver.received for item in r.body["data"]]

        wait_for(lambda: relayed(store_url, namespace), 60, "every change through the bus")
        wait_for(lambda: len(notified()) >= len(changes()), 60, "the notifications")
        time.sleep(1.0)  # room for a duplicate to show up, should there be one
        matched = changes()
        assert len(matched) == len({m for m, _ in matched})
        assert len({hub for _, hub in matched}) == 2, "one hub matched every change"
        got = notified()
        twice = [item for item, n in Counter(got).items() if n > 1]
        assert not twice, f"notified twice: {twice[:3]}"
        assert len(got) == len(matched)
        assert {entity for entity, _ in got} == set(sent)
    finally:
        for device in devices:
            device.close()
        receiver.close()
