"""JSON Web Key Sets: the verification keys of an issuer, from a URL, a file or the database.

A `KeySet` holds the keys it last loaded and loads again when asked for a key id it does not
know (an issuer rotated its keys), at most once per `min_refresh_s`, so forged key ids cannot
make the hub hammer an issuer. Loading is a callable, so this module does no I/O of its own.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jwt

log = logging.getLogger(__name__)
JwksLoader = Callable[[], Mapping[str, Any]]


class UnknownKey(LookupError):
    """No key of the set has the token's key id, even after reloading."""


class KeySet:
    """Keys by kid, reloaded on an unknown kid (rotation) or after `max_age_s`."""

    def __init__(self, load: JwksLoader, *, min_refresh_s: float = 10.0,
                 max_age_s: float = 3600.0, name: str = "") -> None:
        self._load = load
        self._min_refresh_s = min_refresh_s
        self._max_age_s = max_age_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()
        self.name = name

    def _reload(self) -> None:
        document = self._load()
        keys: dict[str, jwt.PyJWK] = {}
        for item in document.get("keys", []):
            if not isinstance(item, Mapping) or item.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(dict(item))
            except (jwt.PyJWKError, jwt.InvalidKeyError) as error:
                log.warning("event=jwks_key_skipped set=%s kid=%s reason=%s", self.name,
                            item.get("kid"), error)
                continue
            keys[str(item.get("kid", ""))] = key
        self._keys = keys
        self._loaded_at = time.monotonic()
        log.info("event=jwks_loaded set=%s keys=%d", self.name, len(keys))

    def key(self, kid: str | None) -> jwt.PyJWK:
        """The key for `kid` (None: the only key of the set)."""
        with self._lock:
            age = time.monotonic() - self._loaded_at
            found = self._find(kid)
            if (found is None and age >= self._min_refresh_s) or age >= self._max_age_s:
                try:
                    self._reload()
                except Exception as error:  # any loader failure: keep the keys we had
                    log.warning("event=jwks_load_failed set=%s reason=%s", self.name, error)
                found = self._find(kid)
        if found is None:
            raise UnknownKey(f"no key {kid!r} in the key set of {self.name or 'the issuer'}")
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)


def file_loader(path: Path) -> JwksLoader:
    """Read a JWKS document from a file each time (an edited file is a rotation)."""

    def load() -> Mapping[str, Any]:
        document: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document

    return load
