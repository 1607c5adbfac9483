"""Ingestion at the hub on both store back-ends: message ids land once however batches are
retried or overlap, and a Device entity's last-seen state follows its device's messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cityhub.devices.hub import DEVICE_ENTITY_EVERY, DeviceHub, Letters
from cityhub.devices.messages import Measurement, format_utc
from cityhub.ngsild.model import DEFAULT_VOCAB
from cityhub.store import open_store

LAST_SEEN = DEFAULT_VOCAB + "dateLastValueReported"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(store_url: str, clock: Clock) -> Iterator[DeviceHub]:
    store = open_store(store_url)
    devices = DeviceHub(store, clock)
    for name in ("a", "b"):
        devices.register("", name, "AirQualityObserved", "ecology", 0.0, 0.0)
    yield devices
    devices.close()
    store.close()


def readings(device: str, numbers: range) -> list[Measurement]:
    return [Measurement("", device, f"{device}-{n}", f"2026-05-01T07:{n // 60:02d}:{n % 60:02d}Z",
                        {"pm25": float(n)}) for n in numbers]


def history(hub: DeviceHub, device: str) -> list[float]:
    with hub.db.transaction(write=False) as conn:
        rows = conn.execute(
            "SELECT num FROM attr_history WHERE entity_id = ? AND attr = ? ORDER BY observed_at",
            (f"urn:ngsi-ld:AirQualityObserved:ecology:{device}", DEFAULT_VOCAB + "pm25"),
        ).fetchall()
    return [float(r[0]) for r in rows]


def test_overlapping_and_repeated_batches_land_each_message_once(hub: DeviceHub) -> None:
    first = hub.ingest("", readings("a", range(600)) + readings("b", range(10)), "t")
    assert (first.accepted, first.duplicates) == (610, 0)
    overlap = readings("a", range(300, 900)) + readings("b", range(5, 15)) + readings(
        "a", range(899, 900))  # one id twice in a batch
    second = hub.ingest("", overlap, "t")
    assert (second.accepted, second.duplicates) == (305, 306)
    again = hub.ingest("", overlap, "t")
    assert (again.accepted, again.duplicates) == (0, 611)
    assert history(hub, "a") == [float(n) for n in range(900)]
    assert history(hub, "b") == [float(n) for n in range(15)]


def test_device_entity_last_seen_is_written_at_most_once_per_interval(
        hub: DeviceHub, clock: Clock) -> None:
    def entity_seen() -> str:
        entity = hub.store.get("", "urn:ngsi-ld:Device:ecology:a")
        assert entity is not None
        return str(entity["attrs"][LAST_SEEN][0]["value"])

    start = clock.now
    hub.ingest("", readings("a", range(5)), "t")
    assert entity_seen() == format_utc(start)
    clock.now = start + DEVICE_ENTITY_EVERY / 2
    hub.ingest("", readings("a", range(5, 10)), "t")
    assert entity_seen() == format_utc(start)  # the entity lags by less than the interval
    assert hub.get("", "a").last_seen == format_utc(clock.now)  # the registry does not
    clock.now = start + DEVICE_ENTITY_EVERY + timedelta(milliseconds=1)
    hub.ingest("", readings("a", range(10, 15)), "t")
    assert entity_seen() == format_utc(clock.now)


def test_a_batch_whose_first_try_died_before_its_record_is_redone_once(
        hub: DeviceHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub process that dies after a batch's measurements landed but before the batch was
    recorded as handled: the redelivery lands the dead letters once and nothing else twice;
    a further redelivery is skipped."""
    from cityhub.api.routers.ingest import apply_batch

    body = {"measurements": [m.to_json() for m in readings("a", range(3))
                             + readings("ghost", range(1))],  # refused here: unknown device
            "deadLetters": [{"device": "z", "reason": "bad topic", "payload": "?"}]}
    real = hub.dead_letter

    def crash(letters: Letters, batch: str | None = None) -> bool:
        if batch is not None:  # the process dies as it records the batch, after all the rest
            raise RuntimeError("process died")
        return real(letters, batch)

    monkeypatch.setattr(hub, "dead_letter", crash)
    with pytest.raises(RuntimeError):
        apply_batch(hub, "", body, "edge-bus", "edge:box:1-4")
    monkeypatch.setattr(hub, "dead_letter", real)
    redone = apply_batch(hub, "", body, "edge-bus", "edge:box:1-4")
    assert (redone.accepted, redone.duplicates, redone.rejected) == (0, 3, 1)
    again = apply_batch(hub, "", body, "edge-bus", "edge:box:1-4")
    assert (again.accepted, again.duplicates) == (0, 4)
    assert history(hub, "a") == [0.0, 1.0, 2.0]
    letters, total = hub.dead_letters("")
    assert total == 2  # the edge's and the unknown device's, once each
    assert sorted(str(letter["reason"]) for letter in letters) == ["bad topic", "unknown device"]
