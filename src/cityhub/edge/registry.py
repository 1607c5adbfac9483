"""The edge's copy of the device registry: fetched from the hub (`/devices/v1/registry`),
cached in the outbox database for starts without the hub, or read from a JSON export file."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from cityhub.devices.catalogue import device_type
from cityhub.devices.registry import DeviceRecord
from cityhub.edge.outbox import Outbox

log = logging.getLogger(__name__)


def records_from(items: object) -> dict[tuple[str, str], DeviceRecord]:
    found: dict[tuple[str, str], DeviceRecord] = {}
    if not isinstance(items, list):
        return found
    for item in items:
        try:
            location = item["location"]
            record = DeviceRecord(str(item["tenant"]), str(item["id"]), str(item["type"]),
                                  str(item["owner"]), float(location[0]), float(location[1]),
                                  str(item["credential"]), str(item.get("decoder", "json")),
                                  str(item.get("state", "ok")))
        except (KeyError, TypeError, ValueError, IndexError):
            continue
        if device_type(record.type) is not None:
            found[(record.tenant, record.device_id)] = record
    return found


class EdgeRegistry:
    def __init__(self, outbox: Outbox, hub_url: str | None, token: str | None,
                 file: Path | None) -> None:
        self.outbox, self.hub_url, self.token, self.file = outbox, hub_url, token, file
        self._records: dict[tuple[str, str], DeviceRecord] = {}
        self._lock = threading.Lock()
        self._last_try = 0.0

    def get(self, tenant: str, device_id: str) -> DeviceRecord | None:
        return self._records.get((tenant, device_id))

    def __len__(self) -> int:
        return len(self._records)

    def load(self) -> None:
        """Hub first, then the file, then the cached copy."""
        if self.refresh():
            return
        if self.file is not None:
            try:
                self._records = records_from(orjson.loads(self.file.read_bytes()))
                log.info("event=registry_loaded source=file devices=%d", len(self._records))
                return
            except (OSError, orjson.JSONDecodeError) as error:
                log.warning("event=registry_file_unreadable error=%r", str(error))
        self._records = records_from(self.outbox.load_registry())
        log.info("event=registry_loaded source=cache devices=%d", len(self._records))

    def refresh(self, min_interval_s: float = 0.0) -> bool:
        """Fetch the hub's registry (at most once per `min_interval_s`); True on success."""
        if self.hub_url is None:
            return False
        with self._lock:
            if time.monotonic() - self._last_try < min_interval_s:
                return False
            self._last_try = time.monotonic()
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            try:
                response = httpx.get(f"{self.hub_url}/devices/v1/registry", headers=headers,
                                     timeout=5.0)
                response.raise_for_status()
                items: Any = response.json()
            except (httpx.HTTPError, ValueError) as error:
                log.debug("event=registry_fetch_failed error=%r", str(error))
                return False
            self._records = records_from(items)
            self.outbox.save_registry(items)
        return True
