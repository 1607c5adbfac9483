"""Settings of every cityhub process, read from the environment (prefix CITYHUB_) or given in code.

Nothing reads the environment at import time: build `Settings()` where a process starts and
pass it on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
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
    audit_enabled: bool = Field(
        default=True,
        description="Append audit events to the Merkle ledger (off: events are dropped; "
        "only for measuring the cost of auditing).",
    )
    audit_key_file: Path | None = Field(
        default=None,
        description="Ed25519 PEM key that signs the ledger's tree heads; created (0600) when "
        "absent. Default: data_dir/audit-ed25519.pem.",
    )
    audit_flush_interval_s: float = Field(
        default=0.2, gt=0, description="How often buffered audit events are appended."
    )
    audit_sign_interval_s: float = Field(
        default=60.0, gt=0, description="How often a tree head is signed when the ledger grew."
    )
    privacy_budget: float = Field(
        default=10.0, gt=0, description="Total epsilon each dataset may spend on "
        "differentially private answers.",
    )
    privacy_max_epsilon: float = Field(
        default=1.0, gt=0, description="Largest epsilon one private aggregate query may spend."
    )
    quality_bar: float = Field(
        default=0.75, ge=0, le=1,
        description="Overall data quality score (0..1) a dataset needs to pass.",
    )
    datasets_file: Path | None = Field(
        default=None,
        description="TOML file of catalogued datasets for the in-memory catalogue "
        "(default: the district's datasets shipped with cityhub).",
    )

    def audit_key_path(self) -> Path:
        return self.audit_key_file or self.data_dir / "audit-ed25519.pem"

    auth: Literal["enabled", "disabled"] = Field(
        default="enabled",
        description="Bearer-token authentication of every API but the public routes. "
        "`disabled` (local experiments, conformance suites) is refused unless the hub binds "
        "to a loopback address.",
    )
    auth_issuer: str = Field(
        default="urn:cityhub:issuer",
        description="The `iss` of tokens made by the hub's built-in issuer (`cityhub auth`).",
    )
    auth_audience: str = Field(
        default="cityhub", description="The `aud` every accepted token must carry."
    )
    auth_builtin_issuer: bool = Field(
        default=True, description="Accept tokens of the built-in issuer (keys in the store)."
    )
    auth_issuers: dict[str, str] = Field(
        default_factory=dict,
        description="Other trusted OIDC issuers, as a JSON object: issuer -> its JWKS "
        "(an https:// URL or a file path).",
    )
    policy_dir: Path | None = Field(
        default=None,
        description="Folder of Cedar access policies (*.cedar), reloaded when a file changes; "
        "default: the policies shipped in the package.",
    )

    bus_url: str = Field(
        default="memory://",
        description="Event bus: memory:// (in-process) or nats://host:4222 (NATS JetStream; "
        "entity changes, edge forwarding and notifications then go through it).",
    )
    edge_token: SecretStr | None = Field(
        default=None,
        description="Bearer token edge agents present to /ingest/v1/batch and "
        "/devices/v1/registry; unset leaves them open (demo only).",
    )

    def resolved_store_url(self) -> str:
        """The store URL, defaulting to the embedded SQLite file under data_dir."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{self.data_dir / 'cityhub.db'}"
