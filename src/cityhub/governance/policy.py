"""The policy decision point: one place that decides every access, from declarative Cedar
policies (cedarpy) kept in a folder and reloaded when a file changes, default deny.

The request names the subject's attributes (kind, department, roles, clearance), the action,
the resource (a dataset with owner, tier, tenant, entity type, declared attributes) and the
context (purpose, whether a live grant covers it, hour of day UTC, source address, the
posture of the device the request comes from: see `cityhub.governance.posture`). A decision
names the policy that decided it: the `@id("...")` annotation of the permitting or forbidding
policy, or `default-deny` when none applied.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cedarpy

from cityhub.governance.datasets import Tier
from cityhub.governance.identity import TIER_LEVEL, Principal
from cityhub.governance.posture import NO_DEVICE, Posture

log = logging.getLogger(__name__)
DEFAULT_POLICY_DIR = Path(__file__).parent / "policies"
ACTIONS = ("read", "write", "delete", "request", "decide", "administer", "audit", "verify",
           "aggregate", "score", "inspect", "register")
DEFAULT_DENY = "default-deny"
_POLICY_HEAD = re.compile(r'((?:@\w+\("[^"]*"\)\s*)*)\b(permit|forbid)\s*\(')
_ID = re.compile(r'@id\("([^"]*)"\)')
_COMMENT = re.compile(r"//[^\n]*")


class PolicyError(ValueError):
    """The policy files do not parse; the previous policies stay in force."""


@dataclass(frozen=True, slots=True)
class Resource:
    """What is touched: a catalogued dataset, or `uncatalogued:<type>` data with no owner."""

    dataset: str
    owner: str
    tier: Tier
    tenant: str = ""
    entity_type: str = ""
    attributes: tuple[str, ...] = ()  # the dataset's declared attributes (expanded IRIs)

    def cedar_attributes(self) -> dict[str, Any]:
        """`attributes` go to Cedar by their short names (`plate`, `location`), so that a
        policy can say `resource.attributes.contains("plate")`."""
        return {"owner": self.owner, "tier": TIER_LEVEL[self.tier], "tenant": self.tenant,
                "entityType": self.entity_type,
                "attributes": sorted({_short(a) for a in self.attributes})}


@dataclass(frozen=True, slots=True)
class AccessContext:
    """The request's circumstances (zero trust: decided on each request)."""

    purpose: str = ""
    granted: bool = False
    source: str = ""
    posture: Posture = NO_DEVICE  # of the device the request comes from or speaks for
    hour: int = field(default_factory=lambda: datetime.now(UTC).hour)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str  # the deciding policy's @id, or default-deny
    errors: tuple[str, ...] = ()


def _policy_ids(text: str) -> list[str]:
    """The @id of each policy in order (cedarpy names them policy0, policy1, ...)."""
    ids = []
    for number, match in enumerate(_POLICY_HEAD.finditer(_COMMENT.sub("", text))):
        found = _ID.search(match.group(1))
        ids.append(found.group(1) if found else f"policy{number}")
    return ids


class PolicyDecisionPoint:
    """Decides with the *.cedar files of `folder`, re-read when one changes (checked at most
    every `check_every_s`). Decisions are cached per distinct request until the next reload."""

    def __init__(self, folder: Path = DEFAULT_POLICY_DIR, *, check_every_s: float = 1.0,
                 cache_size: int = 4096) -> None:
        self.folder = folder
        self._check_every_s = check_every_s
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, float], ...] = ()
        self._checked = float("-inf")
        self._text = ""
        self._ids: list[str] = []
        self._cache: OrderedDict[tuple[Any, ...], Decision] = OrderedDict()
        self.version = 0
        self._load(self._scan())

    def _scan(self) -> tuple[tuple[str, float], ...]:
        if not self.folder.is_dir():
            raise PolicyError(f"policy folder {self.folder} does not exist")
        return tuple((str(p), p.stat().st_mtime) for p in sorted(self.folder.glob("*.cedar")))

    def _load(self, stamp: tuple[tuple[str, float], ...]) -> None:
        text = "\n".join(Path(path).read_text(encoding="utf-8") for path, _ in stamp)
        probe = cedarpy.is_authorized(
            {"principal": 'CityHub::Principal::"probe"', "action": 'CityHub::Action::"read"',
             "resource": 'CityHub::Dataset::"probe"', "context": {}}, text, [])
        parse_errors = [str(e) for e in probe.diagnostics.errors if "parse" in str(e).lower()]
        if parse_errors:
            raise PolicyError(f"policies in {self.folder} do not parse: {parse_errors[0]}")
        self._text, self._ids, self._stamp = text, _policy_ids(text), stamp
        self._cache.clear()
        self.version += 1
        log.info("event=policies_loaded folder=%s files=%d policies=%d version=%d",
                 self.folder, len(stamp), len(self._ids), self.version)

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._check_every_s:
            return
        self._checked = now
        try:
            stamp = self._scan()
            if stamp != self._stamp:
                self._load(stamp)
        except (OSError, PolicyError) as error:
            log.error("event=policies_reload_failed folder=%s reason=%s", self.folder, error)

    def decide(self, principal: Principal, action: str, resource: Resource,
               context: AccessContext) -> Decision:
        key = (principal.key, principal.kind, principal.department, principal.roles,
               principal.clearance, action, resource, context)
        with self._lock:
            self._maybe_reload()
            cached = self._cache.get(key)
            if cached is not None:
                return cached
            text, ids = self._text, self._ids
        decision = self._evaluate(text, ids, principal, action, resource, context)
        with self._lock:
            self._cache[key] = decision
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return decision

    @staticmethod
    def _evaluate(text: str, ids: list[str], principal: Principal, action: str,
                  resource: Resource, context: AccessContext) -> Decision:
        entities = [
            {"uid": {"type": "CityHub::Principal", "id": principal.key},
             "attrs": principal.cedar_attributes(), "parents": []},
            {"uid": {"type": "CityHub::Dataset", "id": resource.dataset},
             "attrs": resource.cedar_attributes(), "parents": []},
        ]
        request = {
            "principal": f'CityHub::Principal::"{_escape(principal.key)}"',
            "action": f'CityHub::Action::"{action}"',
            "resource": f'CityHub::Dataset::"{_escape(resource.dataset)}"',
            "context": {"purpose": context.purpose, "granted": context.granted,
                        "source": context.source, "posture": context.posture.cedar(),
                        "hour": context.hour},
        }
        result = cedarpy.is_authorized(request, text, entities)
        reasons = [_name(ids, r) for r in result.diagnostics.reasons]
        errors = tuple(str(e) for e in result.diagnostics.errors)
        rule = ",".join(sorted(reasons)) if reasons else DEFAULT_DENY
        return Decision(allowed=result.allowed, rule=rule, errors=errors)


def _short(iri: str) -> str:
    return iri.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _name(ids: list[str], reason: str) -> str:
    if reason.startswith("policy") and reason[6:].isdigit() and int(reason[6:]) < len(ids):
        return ids[int(reason[6:])]
    return reason
