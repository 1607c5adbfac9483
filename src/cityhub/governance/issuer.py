"""The built-in token issuer of the embedded default: departments, principals (users, service
accounts, devices, citizens) and RSA signing keys kept in the hub's database.

Keys are made on first use (never shipped), rotated with `rotate_key` (older keys stay in the
JWKS until retired, so tokens already handed out keep verifying), and published as a JWKS.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cityhub.governance.datasets import Tier
from cityhub.governance.identity import PrincipalKind
from cityhub.governance.tables import create_tables
from cityhub.store.database import Database

ALGORITHM = "RS256"


class IssuerError(ValueError):
    """A request to the issuer that cannot be met (unknown department, duplicate name...)."""


@dataclass(frozen=True)
class Account:
    """A principal registered with the built-in issuer."""

    subject: str
    kind: PrincipalKind
    department: str
    roles: tuple[str, ...]
    clearance: Tier
    disabled: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


class BuiltinIssuer:
    """Issues RS256 tokens for the accounts in its tables; `issuer` is its `iss` value."""

    def __init__(self, db: Database, issuer: str, audience: str) -> None:
        self.db = db
        self.issuer = issuer
        self.audience = audience
        create_tables(db)

    # -- keys --------------------------------------------------------------------------------

    def rotate_key(self) -> str:
        """Make a new signing key (the newest signs); return its kid."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        kid = f"cityhub-{_now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
        public: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(
            private.public_key()))
        public.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
        with self.db.transaction(write=True) as conn:
            conn.execute("INSERT INTO gov_signing_keys (kid, private_pem, public_jwk, created_at)"
                         " VALUES (?, ?, ?, ?)", (kid, pem, json.dumps(public),
                                                  _now().isoformat()))
        return kid

    def retire_key(self, kid: str) -> None:
        with self.db.transaction(write=True) as conn:
            conn.execute("UPDATE gov_signing_keys SET retired_at = ? WHERE kid = ?",
                         (_now().isoformat(), kid))

    def ensure_key(self) -> str:
        """The kid of the current signing key, made first if there is none."""
        return self._signing_key()[0]

    def _signing_key(self) -> tuple[str, str]:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT kid, private_pem FROM gov_signing_keys WHERE retired_at "
                               "IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1").fetchone()
        if row is None:
            self.rotate_key()
            return self._signing_key()
        return str(row[0]), str(row[1])

    def jwks(self) -> dict[str, Any]:
        """The public keys not retired, as a JWKS document."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute("SELECT public_jwk FROM gov_signing_keys WHERE retired_at IS NULL"
                                " ORDER BY created_at").fetchall()
        return {"keys": [json.loads(row[0]) for row in rows]}

    # -- departments and accounts ------------------------------------------------------------

    def add_department(self, name: str, title: str = "") -> None:
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise IssuerError(f"department name {name!r}: use letters, digits, - and _")
        with self.db.transaction(write=True) as conn:
            if conn.execute("SELECT 1 FROM gov_departments WHERE name = ?", (name,)).fetchone():
                raise IssuerError(f"department {name!r} exists already")
            conn.execute("INSERT INTO gov_departments (name, title, created_at) VALUES (?, ?, ?)",
                         (name, title or name, _now().isoformat()))

    def departments(self) -> list[tuple[str, str]]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute("SELECT name, title FROM gov_departments ORDER BY name").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def add_account(self, subject: str, kind: PrincipalKind, department: str = "",
                    roles: tuple[str, ...] = (), clearance: Tier = Tier.PUBLIC) -> Account:
        if not subject:
            raise IssuerError("an account needs a name")
        with self.db.transaction(write=True) as conn:
            if department and not conn.execute(
                    "SELECT 1 FROM gov_departments WHERE name = ?", (department,)).fetchone():
                raise IssuerError(f"no department {department!r} (add it first)")
            if kind is not PrincipalKind.CITIZEN and not department:
                raise IssuerError(f"a {kind.value} account belongs to a department")
            if conn.execute("SELECT 1 FROM gov_principals WHERE subject = ?",
                            (subject,)).fetchone():
                raise IssuerError(f"account {subject!r} exists already")
            conn.execute(
                "INSERT INTO gov_principals (subject, kind, department, roles, clearance, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (subject, kind.value, department, json.dumps(sorted(roles)), clearance.value,
                 _now().isoformat()))
        return Account(subject, kind, department, tuple(sorted(roles)), clearance)

    def set_disabled(self, subject: str, disabled: bool) -> None:
        """Disable an account (its tokens are refused from the next request on, see
        `cityhub.governance.accounts`) or enable it again."""
        with self.db.transaction(write=True) as conn:
            if not conn.execute("SELECT 1 FROM gov_principals WHERE subject = ?",
                                (subject,)).fetchone():
                raise IssuerError(f"no account {subject!r}")
            conn.execute("UPDATE gov_principals SET disabled = ? WHERE subject = ?",
                         (1 if disabled else 0, subject))

    def remove_account(self, subject: str) -> None:
        """Delete an account and its password; its tokens are refused as of an unknown account
        (a new account of the same name starts without a password)."""
        with self.db.transaction(write=True) as conn:
            if not conn.execute("SELECT 1 FROM gov_principals WHERE subject = ?",
                                (subject,)).fetchone():
                raise IssuerError(f"no account {subject!r}")
            conn.execute("DELETE FROM gov_principals WHERE subject = ?", (subject,))
            conn.execute("DELETE FROM ops_passwords WHERE subject = ?", (subject,))

    def account(self, subject: str) -> Account | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT subject, kind, department, roles, clearance, disabled "
                               "FROM gov_principals WHERE subject = ?", (subject,)).fetchone()
        return None if row is None else _account(row)

    def accounts(self) -> list[Account]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute("SELECT subject, kind, department, roles, clearance, disabled "
                                "FROM gov_principals ORDER BY subject").fetchall()
        return [_account(row) for row in rows]

    # -- tokens ------------------------------------------------------------------------------

    def issue(self, subject: str, *, lifetime: timedelta = timedelta(hours=8),
              purpose: str | None = None) -> str:
        """A signed token for a registered, enabled account."""
        account = self.account(subject)
        if account is None:
            raise IssuerError(f"no account {subject!r}")
        if account.disabled:
            raise IssuerError(f"account {subject!r} is disabled")
        now = _now()
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": subject,
            "iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp()),
            "jti": uuid.uuid4().hex, "principal_type": account.kind.value,
            "department": account.department, "roles": list(account.roles),
            "clearance": account.clearance.value,
        }
        if purpose:
            claims["purpose"] = purpose
        kid, pem = self._signing_key()
        return jwt.encode(claims, pem, algorithm=ALGORITHM, headers={"kid": kid})

    def discovery(self, base_url: str) -> Mapping[str, Any]:
        """The OpenID provider metadata the hub publishes for its built-in issuer."""
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{base_url}/auth/jwks.json",
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "claims_supported": ["sub", "principal_type", "department", "roles", "clearance",
                                 "purpose"],
        }


def _account(row: Any) -> Account:
    return Account(str(row[0]), PrincipalKind(row[1]), str(row[2]),
                   tuple(json.loads(row[3])), Tier(row[4]), bool(row[5]))
