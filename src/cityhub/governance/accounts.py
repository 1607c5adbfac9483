"""Account status per request: a token of the built-in issuer is honoured only while its
account exists and is enabled.

Signatures prove who issued a token, not that its account still stands, so each request's
subject is looked up in the identity store (`gov_principals`). Lookups are cached for
`ttl_s` seconds per process (one indexed read per subject and TTL, not per request). A change
made in this process (the API, an embedded CLI call) invalidates its entry at once; a change
made by another process (`cityhub auth disable` on the command line, another hub replica)
applies everywhere within `ttl_s`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from cityhub.governance.issuer import Account, BuiltinIssuer

ACCOUNT_TTL_S = 2.0


def refusal(subject: str, account: Account | None) -> str | None:
    """Why a token of `subject` is refused now, or None when its account stands."""
    if account is None:
        return f"account {subject!r} no longer exists"
    if account.disabled:
        return f"account {subject!r} is disabled"
    return None


class AccountStatus:
    """Cached `refusal` of the built-in issuer's accounts."""

    def __init__(self, issuer: BuiltinIssuer, ttl_s: float = ACCOUNT_TTL_S,
                 cache_size: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.issuer = issuer
        self.ttl_s = ttl_s
        self._clock = clock
        self._size = cache_size
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()

    def cached(self, subject: str) -> tuple[bool, str | None]:
        """(found, refusal) from the cache without touching the store."""
        with self._lock:
            entry = self._cache.get(subject)
            if entry is None or entry[1] <= self._clock():
                return False, None
            return True, entry[0]

    def check(self, subject: str) -> str | None:
        """The refusal for `subject`, read from the store when the cache has none (blocking)."""
        found, reason = self.cached(subject)
        if found:
            return reason
        reason = refusal(subject, self.issuer.account(subject))
        with self._lock:
            self._cache[subject] = (reason, self._clock() + self.ttl_s)
            self._cache.move_to_end(subject)
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return reason

    def invalidate(self, subject: str) -> None:
        with self._lock:
            self._cache.pop(subject, None)

    # -- changes that apply at once in this process ------------------------------------------

    def disable(self, subject: str) -> None:
        self.issuer.set_disabled(subject, True)
        self.invalidate(subject)

    def enable(self, subject: str) -> None:
        self.issuer.set_disabled(subject, False)
        self.invalidate(subject)

    def remove(self, subject: str) -> None:
        self.issuer.remove_account(subject)
        self.invalidate(subject)
