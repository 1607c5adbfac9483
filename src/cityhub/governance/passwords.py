"""Passwords of the built-in issuer's accounts, for signing in on the operations page.

Only argon2id hashes are kept (argon2-cffi's `PasswordHasher`, its default parameters, a fresh
salt per hash), in `ops_passwords`, one of the identity tables (`cityhub.governance.tables`):
removing an account removes its password in the same transaction. A password is never logged
or stored in clear; checking an unknown account still runs one hash, so the answer time does
not tell which accounts exist. An account without a password cannot sign in with one (service
accounts get tokens from `cityhub auth token`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cityhub.governance.tables import create_tables
from cityhub.store.database import Database

MIN_LENGTH = 8


class WeakPassword(ValueError):
    """A password too short to set."""


class Passwords:
    """Set and check account passwords (argon2id)."""

    def __init__(self, db: Database, hasher: PasswordHasher | None = None) -> None:
        self.db = db
        self.hasher = hasher or PasswordHasher()
        self._dummy = self.hasher.hash("not a password of anyone")
        create_tables(db)

    def set(self, subject: str, password: str) -> None:
        if len(password) < MIN_LENGTH:
            raise WeakPassword(f"a password has at least {MIN_LENGTH} characters")
        hashed = self.hasher.hash(password)
        now = datetime.now(UTC).isoformat()
        with self.db.transaction(write=True) as conn:
            conn.execute("DELETE FROM ops_passwords WHERE subject = ?", (subject,))
            conn.execute("INSERT INTO ops_passwords (subject, hash, updated_at) VALUES (?, ?, ?)",
                         (subject, hashed, now))

    def has(self, subject: str) -> bool:
        return self._hash(subject) is not None

    def _hash(self, subject: str) -> str | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT hash FROM ops_passwords WHERE subject = ?",
                               (subject,)).fetchone()
        return None if row is None else str(row[0])

    def check(self, subject: str, password: str) -> bool:
        """Whether `password` is the account's; rehashes when the parameters have grown."""
        stored = self._hash(subject)
        try:
            self.hasher.verify(stored or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        if stored is None:
            return False
        if self.hasher.check_needs_rehash(stored):
            self.set(subject, password)
        return True
