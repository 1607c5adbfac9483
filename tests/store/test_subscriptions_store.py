"""The subscription store on every back-end: CRUD, the change listener (queueing inside the
write transaction, its cost when nobody subscribes), and the delivery bookkeeping (leases,
retries, throttling, periodic beats, status)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from cityhub.ngsild.errors import AlreadyExists, ResourceNotFound
from cityhub.ngsild.subscription import Subscription, apply_patch, parse_subscription
from cityhub.store.database import Connection, Cursor
from cityhub.store.port import Change
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from cityhub.store.subscriptions import Claim, SubscriptionStore
from tests.store.helpers import TERMS, Clock, vehicle

T = "city"


@pytest.fixture
def subs(store: SqlStore) -> Iterator[SubscriptionStore]:
    subscriptions = SubscriptionStore(store.db, lease_s=30.0)
    store.listeners.append(subscriptions.on_changes)
    yield subscriptions
    store.listeners.remove(subscriptions.on_changes)


def subscription(clock: Clock, n: int = 1, **members: Any) -> Subscription:
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Subscription:{n}",
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": "http://receiver.example/n"}},
        **members,
    }
    return parse_subscription(body, TERMS, context=None, now=clock())


def claim_one(subs: SubscriptionStore, clock: Clock, owner: str = "a") -> Claim:
    claims = subs.claim(owner, clock(), limit=10)
    assert len(claims) == 1, claims
    return claims[0]


def set_speed(service: EntityService, speed: float, n: int = 1, tenant: str = T) -> None:
    service.update_attrs(tenant, f"urn:ngsi-ld:Vehicle:{n}",
                         {TERMS.expand_term("speed"): [{"type": "Property", "value": speed}]})


# -- CRUD ------------------------------------------------------------------------------------


def test_create_get_page_update_delete(subs: SubscriptionStore, clock: Clock) -> None:
    for n in (1, 2, 3):
        subs.create(T, subscription(clock, n), clock())
        clock.tick()
    stored = subs.get(T, "urn:ngsi-ld:Subscription:2")
    assert stored is not None
    assert stored.state.times_sent == 0
    assert stored.state.created_at == stored.state.modified_at
    page, total = subs.page(T, limit=2, offset=1)
    assert total == 3
    assert [s.subscription.id for s in page] == [
        "urn:ngsi-ld:Subscription:2", "urn:ngsi-ld:Subscription:3"]
    clock.tick()
    subs.update(T, "urn:ngsi-ld:Subscription:2",
                lambda s: apply_patch(s, {"q": "speed>1"}, TERMS, now=clock()), clock())
    changed = subs.get(T, "urn:ngsi-ld:Subscription:2")
    assert changed is not None
    assert changed.subscription.body["q"] == "speed>1"
    assert changed.state.modified_at == clock.text != changed.state.created_at
    subs.delete(T, "urn:ngsi-ld:Subscription:2")
    assert subs.get(T, "urn:ngsi-ld:Subscription:2") is None
    assert subs.page(T, 10, 0)[1] == 2


def test_ids_are_unique_per_tenant(subs: SubscriptionStore, clock: Clock) -> None:
    subs.create(T, subscription(clock), clock())
    with pytest.raises(AlreadyExists):
        subs.create(T, subscription(clock), clock())
    subs.create("other", subscription(clock), clock())  # the same id in another tenant
    assert subs.get("", "urn:ngsi-ld:Subscription:1") is None


def test_missing_subscriptions_are_not_found(subs: SubscriptionStore, clock: Clock) -> None:
    with pytest.raises(ResourceNotFound):
        subs.delete(T, "urn:ngsi-ld:Subscription:9")
    with pytest.raises(ResourceNotFound):
        subs.update(T, "urn:ngsi-ld:Subscription:9", lambda s: s, clock())


# -- the change listener ---------------------------------------------------------------------


def test_a_matching_write_queues_one_notification(
    subs: SubscriptionStore, service: EntityService, clock: Clock
) -> None:
    subs.create(T, subscription(clock, q="speed>30"), clock())
    service.create(T, vehicle(speed=50))
    set_speed(service, 10)  # q does not hold: nothing queued
    set_speed(service, 40)
    claim = claim_one(subs, clock)
    assert [(p.operation, p.entity["attrs"][TERMS.expand_term("speed")][0]["value"])
            for p in claim.pending] == [("create", 50), ("update", 40)]
    assert claim.pending[0].notification_id != claim.pending[1].notification_id


def test_tenants_inactive_and_expired_subscriptions_queue_nothing(
    subs: SubscriptionStore, service: EntityService, clock: Clock
) -> None:
    subs.create("elsewhere", subscription(clock, 1), clock())
    subs.create(T, subscription(clock, 2, isActive=False), clock())
    expiring = (clock.now + timedelta(seconds=5)).isoformat()
    subs.create(T, subscription(clock, 3, expiresAt=expiring), clock())
    clock.tick(10)
    service.create(T, vehicle())
    assert subs.claim("a", clock(), limit=10) == []
    for n in (1, 2, 3):
        tenant = "elsewhere" if n == 1 else T
        assert subs.pending_count(tenant, f"urn:ngsi-ld:Subscription:{n}") == 0


class CountingConnection:
    def __init__(self, inner: Connection) -> None:
        self.inner = inner
        self.statements: list[str] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self.statements.append(sql)
        return self.inner.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.statements.append(sql)
        self.inner.executemany(sql, rows)


def test_without_subscriptions_the_listener_costs_one_select(
    store: SqlStore, subs: SubscriptionStore, clock: Clock
) -> None:
    subs.create("other-tenant", subscription(clock), clock())
    entity = vehicle()
    change = Change(T, entity["id"], "create", tuple(entity["attrs"]), entity, None, clock.text)
    with store.db.transaction(write=True) as conn:
        counting = CountingConnection(conn)
        subs.on_changes(counting, [change, change])
    assert len(counting.statements) == 1
    assert counting.statements[0].lstrip().upper().startswith("SELECT")


def test_a_subscription_of_another_process_is_seen_at_once(
    store: SqlStore, subs: SubscriptionStore, service: EntityService, clock: Clock
) -> None:
    other_process = SubscriptionStore(store.db)  # its own cache, the same tables
    service.create(T, vehicle(speed=1))
    other_process.create(T, subscription(clock, q="speed>30"), clock())
    set_speed(service, 40)
    assert subs.pending_count(T, "urn:ngsi-ld:Subscription:1") == 1
    other_process.update(T, "urn:ngsi-ld:Subscription:1",
                         lambda s: apply_patch(s, {"q": "speed>100"}, TERMS, now=clock()),
                         clock())
    set_speed(service, 50)  # the cached q (speed>30) would match; the new version does not
    assert subs.pending_count(T, "urn:ngsi-ld:Subscription:1") == 1


def test_a_rolled_back_write_queues_nothing(
    store: SqlStore, subs: SubscriptionStore, service: EntityService, clock: Clock
) -> None:
    subs.create(T, subscription(clock), clock())

    def failing(_conn: Connection, _changes: list[Change]) -> None:
        raise RuntimeError("a later listener fails")

    store.listeners.append(failing)
    with pytest.raises(RuntimeError):
        service.create(T, vehicle())
    store.listeners.remove(failing)
    assert subs.pending_count(T, "urn:ngsi-ld:Subscription:1") == 0


# -- delivery bookkeeping --------------------------------------------------------------------


def test_a_lease_gives_a_subscription_to_one_owner(
    subs: SubscriptionStore, service: EntityService, clock: Clock
) -> None:
    subs.create(T, subscription(clock), clock())
    service.create(T, vehicle())
    claim = claim_one(subs, clock, "a")
    assert subs.claim("b", clock(), limit=10) == []
    assert subs.record(claim, claim.pending, clock(), ok=True)
    subs.release(claim)
    assert subs.pending_count(T, claim.subscription.id) == 0
    stored = subs.get(T, claim.subscription.id)
    assert stored is not None
    assert (stored.state.times_sent, stored.state.times_failed, stored.state.status) == (1, 0, "ok")
    assert stored.state.last_success == stored.state.last_notification == clock.text
    set_speed(service, 5)
    assert claim_one(subs, clock, "b").pending[0].operation == "update"


def test_a_failure_waits_for_its_retry_and_keeps_the_order(
    subs: SubscriptionStore, service: EntityService, clock: Clock
) -> None:
    subs.create(T, subscription(clock), clock())
    service.create(T, vehicle())
    claim = claim_one(subs, clock)
    first = claim.pending[0]
    assert subs.record(claim, [first], clock(), ok=False,
                       retry_at=clock.now + timedelta(seconds=4))
    subs.release(claim)
    clock.tick()
    set_speed(service, 7)  # queued behind the failed one
    assert subs.claim("a", clock(), limit=10) == []
    clock.tick(4)
    retry = claim_one(subs, clock)
    assert next(p.nid for p in retry.pending) == first.nid
    assert retry.pending[0].attempts == 1
    assert len(retry.pending) == 2
    stored = subs.get(T, claim.subscription.id)
    assert stored is not None
    assert stored.state.status == "failed"
    assert (stored.state.times_sent, stored.state.times_failed) == (1, 1)
    assert stored.state.last_success is None
    assert stored.state.last_failure is not None
    assert subs.record(retry, retry.pending[:1], clock(), ok=False, retry_at=None)  # given up
    assert subs.pending_count(T, claim.subscription.id) == 1


def test_an_expired_lease_passes_to_another_owner(
    subs: SubscriptionStore, service: EntityService, clock: Clock
) -> None:
    subs.create(T, subscription(clock), clock())
    service.create(T, vehicle())
    stale = claim_one(subs, clock, "a")
    clock.tick(31)
    fresh = claim_one(subs, clock, "b")
    assert not subs.record(stale, stale.pending, clock(), ok=True)  # lease lost
    assert subs.pending_count(T, stale.subscription.id) == 1
    assert subs.record(fresh, fresh.pending, clock(), ok=True)
    assert subs.pending_count(T, stale.subscription.id) == 0


def test_throttling_holds_changes_and_hands_them_over_together(
    subs: SubscriptionStore, service: EntityService, clock: Clock
) -> None:
    subs.create(T, subscription(clock, throttling=10), clock())
    service.create(T, vehicle())
    claim = claim_one(subs, clock)
    subs.record(claim, claim.pending, clock(), ok=True)
    subs.release(claim)
    for speed in (1, 2, 3):
        clock.tick()
        set_speed(service, speed)
    assert subs.claim("a", clock(), limit=10) == []  # 3 s after the last notification
    clock.tick(7)
    held = claim_one(subs, clock)
    assert [p.entity["attrs"][TERMS.expand_term("speed")][0]["value"]
            for p in held.pending] == [1, 2, 3]


def test_time_interval_beats(subs: SubscriptionStore, clock: Clock) -> None:
    subs.create(T, subscription(clock, timeInterval=5), clock())
    assert subs.claim("a", clock(), limit=10) == []
    clock.tick(5)
    beat = claim_one(subs, clock)
    assert beat.periodic
    assert beat.pending == []
    subs.record(beat, [], clock(), ok=True)
    subs.release(beat)
    clock.tick(2)
    assert subs.claim("a", clock(), limit=10) == []
    clock.tick(3)
    assert claim_one(subs, clock).periodic


def test_sweep_drops_notifications_of_expired_subscriptions(
    subs: SubscriptionStore, service: EntityService, clock: Clock
) -> None:
    expiring = (clock.now + timedelta(seconds=5)).isoformat()
    subs.create(T, subscription(clock, expiresAt=expiring), clock())
    service.create(T, vehicle())
    assert subs.sweep(clock()) == 0
    clock.tick(6)
    assert subs.claim("a", clock(), limit=10) == []
    assert subs.sweep(clock()) == 1


def test_concurrent_claims_never_share_a_subscription(
    subs: SubscriptionStore, service: EntityService, clock: Clock
) -> None:
    for n in range(12):
        subs.create(T, subscription(clock, n, entities=[
            {"type": "Vehicle", "id": f"urn:ngsi-ld:Vehicle:{n}"}]), clock())
        service.create(T, vehicle(n))
    got: list[str] = []
    lock = threading.Lock()

    def worker(owner: str) -> None:
        for claim in subs.claim(owner, clock(), limit=5):
            with lock:
                got.append(claim.subscription.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == len(set(got)) == 12
