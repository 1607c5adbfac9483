"""Per-device credentials: a random token shown once, stored only as its SHA-256 digest.

Tokens carry 192 random bits, so a fast digest is safe (as for API tokens) and lets every
message be checked without a slow password hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    """A fresh device token (URL-safe text, 32 characters)."""
    return secrets.token_urlsafe(24)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_matches(token: object, digest: str) -> bool:
    """True when `token` is a string whose digest is `digest` (constant-time comparison)."""
    if not isinstance(token, str) or not digest:
        return False
    return hmac.compare_digest(token_digest(token), digest)
