"""Device posture for the policy decision point, read from the device registry.

A request's posture is known when its principal is a device (its `sub` names the device) or
when it carries a device id (the `Cityhub-Device` header, e.g. a gateway writing for a
device). The registry supplies the device's state (ok; revoked: its credential is withdrawn;
silent; faulty) and when it was last seen; it stores no firmware version, so none is offered.
Policies see it as `context.posture`:

    {registered: Bool, state: String, stale: Bool}

`state` is "unregistered" for a device the registry does not hold; `stale` is true when the
device was last seen more than `STALE_AFTER` ago (a device never seen yet is not stale).
The API reads the registry record on each request that names a device (one indexed lookup),
so a revocation holds at once in every hub process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

STALE_AFTER = timedelta(days=7)
UNREGISTERED = "unregistered"


@dataclass(frozen=True, slots=True)
class Posture:
    """What the registry knows of the device a request comes from or speaks for."""

    device: str = ""
    registered: bool = False
    state: str = UNREGISTERED
    stale: bool = False

    @property
    def known(self) -> bool:
        return bool(self.device)

    def cedar(self) -> dict[str, Any]:
        return {"registered": self.registered, "state": self.state, "stale": self.stale}

    def describe(self) -> str:
        if not self.known:
            return "unknown"
        return f"{self.device}:{self.state}{':stale' if self.stale else ''}"


NO_DEVICE = Posture()


def _seen(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        seen = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return seen if seen.tzinfo else seen.replace(tzinfo=UTC)


def posture_of(device_id: str, registered: bool, state: str = UNREGISTERED,
               last_seen: str | None = None, *, now: datetime,
               stale_after: timedelta = STALE_AFTER) -> Posture:
    """The posture of a device from its registry record (state and last-seen time)."""
    if not registered:
        return Posture(device_id)
    seen = _seen(last_seen)
    return Posture(device_id, True, state, seen is not None and now - seen > stale_after)
