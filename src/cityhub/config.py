"""Settings of every cityhub process, read from the environment (prefix CITYHUB_) or given in code.

Nothing reads the environment at import time: build `Settings()` where a process starts and
pass it on.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """One place for the knobs; each field is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".cityhub"),
        description="Folder for the embedded SQLite store and caches "
        "(relative to the working dir).",
    )
    store_url: str | None = Field(
        default=None,
        description="Where entities live: sqlite:///path.db or postgresql://user@host/db. "
        "Default: SQLite in data_dir/cityhub.db.",
    )
    context_dir: Path | None = Field(
        default=None,
        description="Folder of JSON-LD @context files served instead of fetching their URLs.",
    )
    context_fetch_timeout_s: float = Field(
        default=3.0, gt=0, description="Timeout for fetching a remote @context not held locally."
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL under which clients reach the hub (for hosted @context URLs); "
        "default http://HOST:PORT.",
    )
    max_limit: int = Field(
        default=1000, ge=1, description="Largest page a query may ask for with `limit`."
    )
    notify_workers: int = Field(
        default=4, ge=0, description="Concurrent notification deliveries per hub process (0: none)."
    )
    notify_timeout_s: float = Field(
        default=5.0, gt=0, description="Timeout of one HTTP notification delivery."
    )
    scenario_dir: Path | None = Field(
        default=None,
        description="Folder of RESCO scenarios (default ../shared/scenarios/resco beside the "
        "repository).",
    )
    algorithm_registry: Path | None = Field(
        default=None,
        description="JSON file of recorded and approved controller versions "
        "(default data_dir/algorithms.json).",
    )

    def resolved_store_url(self) -> str:
        """The store URL, defaulting to the embedded SQLite file under data_dir."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{self.data_dir / 'cityhub.db'}"
