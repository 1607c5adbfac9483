"""`edge.toml`: the agent's settings (broker, hub, outbox, windows, rules), read with tomllib.

    [mqtt]      host, port, username, password, client_id, topic
    [hub]       url, transport ("http" or "nats"), bus_url, token, forward ("raw" or
                "aggregated"), batch_size, retry_max_s
    [outbox]    path
    [window]    seconds
    [registry]  refresh_s, file (a JSON export of the hub's registry, for offline edges)
    [[rules]]   name, kind (threshold, rate_of_change, stuck, silence), type, attribute, ...
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cityhub.edge.rules import Rule, build_rule


class ConfigError(ValueError):
    """edge.toml cannot be used; the message names the setting."""


@dataclass
class EdgeConfig:
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    client_id: str = "cityhub-edge"
    topic: str = "cityhub/+/+/up"
    hub_url: str = "http://127.0.0.1:1026"
    transport: str = "http"
    bus_url: str = "nats://127.0.0.1:4222"
    hub_token: str | None = None
    forward: str = "raw"
    batch_size: int = 2000
    retry_max_s: float = 5.0
    outbox_path: Path = Path("edge-outbox.db")
    window_s: float = 60.0
    registry_refresh_s: float = 10.0
    registry_file: Path | None = None
    rules: list[dict[str, Any]] = field(default_factory=list)

    def build_rules(self) -> list[Rule]:
        return [build_rule(r) for r in self.rules]


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"[{name}] must be a table")
    return section


def load_config(path: Path) -> EdgeConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    return config_from(data, base=path.parent)


def config_from(data: dict[str, Any], base: Path = Path()) -> EdgeConfig:
    mqtt, hub = _section(data, "mqtt"), _section(data, "hub")
    outbox, window, registry = (_section(data, n) for n in ("outbox", "window", "registry"))
    rules = data.get("rules", [])
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ConfigError("[[rules]] must be an array of tables")
    try:
        config = EdgeConfig(
            mqtt_host=str(mqtt.get("host", "127.0.0.1")), mqtt_port=int(mqtt.get("port", 1883)),
            mqtt_username=mqtt.get("username"), mqtt_password=mqtt.get("password"),
            client_id=str(mqtt.get("client_id", "cityhub-edge")),
            topic=str(mqtt.get("topic", "cityhub/+/+/up")),
            hub_url=str(hub.get("url", "http://127.0.0.1:1026")).rstrip("/"),
            transport=str(hub.get("transport", "http")),
            bus_url=str(hub.get("bus_url", "nats://127.0.0.1:4222")),
            hub_token=hub.get("token"), forward=str(hub.get("forward", "raw")),
            batch_size=int(hub.get("batch_size", 2000)),
            retry_max_s=float(hub.get("retry_max_s", 5.0)),
            outbox_path=base / str(outbox.get("path", "edge-outbox.db")),
            window_s=float(window.get("seconds", 60.0)),
            registry_refresh_s=float(registry.get("refresh_s", 10.0)),
            registry_file=base / registry["file"] if registry.get("file") else None,
            rules=rules,
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(f"bad setting: {error}") from None
    if config.transport not in ("http", "nats"):
        raise ConfigError("hub.transport must be http or nats")
    if config.forward not in ("raw", "aggregated"):
        raise ConfigError("hub.forward must be raw or aggregated")
    if config.batch_size < 1 or config.window_s <= 0:
        raise ConfigError("hub.batch_size and window.seconds must be positive")
    try:
        config.build_rules()
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return config
