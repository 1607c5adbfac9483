"""Local rules, registered by name: `threshold`, `rate_of_change`, `stuck`, `silence`.

A rule sees each accepted measurement (`check`) and the passing of time (`tick`) and returns
the alerts to raise. Rules fire on the transition into a bad state, not on every message, and
fire again once the value has come back. Time is given in seconds (epoch), never read here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cityhub.devices.messages import Measurement

SEVERITIES = ("informational", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Alert:
    tenant: str
    device_id: str
    rule: str
    kind: str
    attribute: str | None
    value: float | str | None
    severity: str
    description: str
    at: str

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "device": self.device_id, "rule": self.rule,
                "kind": self.kind, "attribute": self.attribute, "value": self.value,
                "severity": self.severity, "description": self.description, "at": self.at}


class Rule(Protocol):
    name: str

    def check(self, measurement: Measurement, device_type: str, now: float) -> list[Alert]: ...

    def tick(self, now: float) -> list[Alert]: ...


class RuleError(ValueError):
    """A rule configuration that cannot be used."""


RuleFactory = Callable[[dict[str, Any]], Rule]
RULES: dict[str, RuleFactory] = {}


def register_rule(kind: str) -> Callable[[RuleFactory], RuleFactory]:
    def add(factory: RuleFactory) -> RuleFactory:
        RULES[kind] = factory
        return factory
    return add


def build_rule(config: dict[str, Any]) -> Rule:
    kind = config.get("kind")
    factory = RULES.get(str(kind))
    if factory is None:
        raise RuleError(f"unknown rule kind {kind!r}: one of {', '.join(sorted(RULES))}")
    try:
        return factory(config)
    except (KeyError, TypeError, ValueError) as error:
        raise RuleError(f"rule {config.get('name', kind)!r}: {error}") from None


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Base:
    name: str
    attribute: str
    severity: str = "medium"
    device_type: str | None = None
    kind: str = ""
    _bad: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")

    def _applies(self, m: Measurement, device_type: str) -> float | str | None:
        if self.device_type is not None and device_type != self.device_type:
            return None
        return m.values.get(self.attribute)

    def _edge(self, m: Measurement, bad: bool, value: float | str, text: str,
              now: float) -> list[Alert]:
        key = (m.tenant, m.device_id)
        if not bad:
            self._bad.discard(key)
            return []
        if key in self._bad:
            return []
        self._bad.add(key)
        return [Alert(m.tenant, m.device_id, self.name, self.kind, self.attribute, value,
                      self.severity, text, _iso(now))]

    def tick(self, now: float) -> list[Alert]:
        return []


@dataclass
class Threshold(_Base):
    above: float | None = None
    below: float | None = None
    kind: str = "threshold"

    def check(self, m: Measurement, device_type: str, now: float) -> list[Alert]:
        value = _number(self._applies(m, device_type))
        if value is None:
            return []
        bad = (self.above is not None and value > self.above) or (
            self.below is not None and value < self.below)
        limit = f"above {self.above:g}" if self.above is not None and value > self.above \
            else f"below {self.below}"
        return self._edge(m, bad, value, f"{self.attribute}={value:g} {limit}", now)


@dataclass
class RateOfChange(_Base):
    max_per_s: float = 1.0
    kind: str = "rate_of_change"
    _last: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def check(self, m: Measurement, device_type: str, now: float) -> list[Alert]:
        value = _number(self._applies(m, device_type))
        if value is None:
            return []
        key = (m.tenant, m.device_id)
        at = datetime.fromisoformat(m.observed_at.replace("Z", "+00:00")).timestamp()
        last = self._last.get(key)
        self._last[key] = (at, value)
        if last is None or at <= last[0]:
            return []
        rate = abs(value - last[1]) / (at - last[0])
        return self._edge(m, rate > self.max_per_s, value,
                          f"{self.attribute} changes {rate:g}/s (limit {self.max_per_s:g}/s)", now)


@dataclass
class Stuck(_Base):
    count: int = 10
    kind: str = "stuck"
    _runs: dict[tuple[str, str], tuple[float | str, int]] = field(default_factory=dict)

    def check(self, m: Measurement, device_type: str, now: float) -> list[Alert]:
        value = self._applies(m, device_type)
        if value is None:
            return []
        key = (m.tenant, m.device_id)
        previous, run = self._runs.get(key, (None, 0))
        run = run + 1 if previous == value else 1
        self._runs[key] = (value, run)
        return self._edge(m, run >= self.count, value,
                          f"{self.attribute} stuck at {value} for {run} messages", now)


@dataclass
class Silence(_Base):
    seconds: float = 300.0
    kind: str = "silence"
    _heard: dict[tuple[str, str], float] = field(default_factory=dict)

    def check(self, m: Measurement, device_type: str, now: float) -> list[Alert]:
        if self.device_type is not None and device_type != self.device_type:
            return []
        key = (m.tenant, m.device_id)
        self._heard[key] = now
        self._bad.discard(key)
        return []

    def tick(self, now: float) -> list[Alert]:
        alerts = []
        for (tenant, device), heard in self._heard.items():
            if now - heard > self.seconds and (tenant, device) not in self._bad:
                self._bad.add((tenant, device))
                alerts.append(Alert(tenant, device, self.name, self.kind, None, None,
                                    self.severity, f"silent for {now - heard:.0f} s", _iso(now)))
        return alerts


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _common(config: dict[str, Any]) -> dict[str, Any]:
    return {"name": str(config.get("name") or config["kind"]),
            "severity": str(config.get("severity", "medium")),
            "device_type": config.get("type")}


def _optional(config: dict[str, Any], key: str) -> float | None:
    return None if config.get(key) is None else float(config[key])


@register_rule("threshold")
def _threshold(config: dict[str, Any]) -> Rule:
    rule = Threshold(attribute=str(config["attribute"]), above=_optional(config, "above"),
                     below=_optional(config, "below"), **_common(config))
    if rule.above is None and rule.below is None:
        raise ValueError("a threshold needs `above` or `below`")
    return rule


@register_rule("rate_of_change")
def _rate(config: dict[str, Any]) -> Rule:
    return RateOfChange(attribute=str(config["attribute"]),
                        max_per_s=float(config["max_per_s"]), **_common(config))


@register_rule("stuck")
def _stuck(config: dict[str, Any]) -> Rule:
    count = int(config.get("count", 10))
    if count < 2:
        raise ValueError("count must be at least 2")
    return Stuck(attribute=str(config["attribute"]), count=count, **_common(config))


@register_rule("silence")
def _silence(config: dict[str, Any]) -> Rule:
    return Silence(attribute="", seconds=float(config["seconds"]), **_common(config))
