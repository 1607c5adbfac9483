"""The algorithm registry (seed 4.1, the algorithm ethics committee): every controller version is
recorded with its configuration and bench results, and approved by a named person; the live
control loop refuses a version nobody approved.

Stored as one JSON file (`CITYHUB_ALGORITHM_REGISTRY`, default data_dir/algorithms.json).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityhub.brain.controllers import Controller, describe


class RegistryError(ValueError):
    """An unknown or unapproved controller version."""


class AlgorithmRegistry:
    """Controller versions keyed by identity (`name@version#confighash`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"versions": {}}
        data: dict[str, Any] = json.loads(self.path.read_text())
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True)
        Path(name).replace(self.path)

    def record(self, controller: Controller, bench: list[dict[str, Any]] | None = None,
               by: str = "unknown") -> dict[str, Any]:
        """Record (or update the bench results of) a controller version."""
        data = self._load()
        entry = data["versions"].setdefault(controller.identity, {
            **describe(controller), "recorded_by": by,
            "recorded_at": datetime.now(UTC).isoformat(), "approvals": [], "bench": [],
        })
        if bench:
            entry["bench"] = bench
        self._save(data)
        return dict(entry)

    def approve(self, identity: str, by: str, note: str = "") -> dict[str, Any]:
        """A named approver signs off a recorded version (it must carry bench results)."""
        if not by.strip():
            raise RegistryError("an approval needs the approver's name")
        data = self._load()
        entry = data["versions"].get(identity)
        if entry is None:
            raise RegistryError(f"no recorded controller version {identity!r}")
        if not entry.get("bench"):
            raise RegistryError(f"{identity} has no bench results: run the bench before approval")
        entry["approvals"].append(
            {"by": by, "at": datetime.now(UTC).isoformat(), "note": note})
        self._save(data)
        return dict(entry)

    def versions(self) -> list[dict[str, Any]]:
        return [dict(v) for _, v in sorted(self._load()["versions"].items())]

    def require_approved(self, controller: Controller) -> dict[str, Any]:
        """The record of an approved version, or RegistryError (the live loop's gate)."""
        entry = self._load()["versions"].get(controller.identity)
        if entry is None or not entry.get("approvals"):
            raise RegistryError(
                f"controller version {controller.identity} is not approved: record it with its "
                "bench results and have it approved (cityhub sandbox registry approve)"
            )
        return dict(entry)
