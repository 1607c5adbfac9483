"""Bearer token verification: signed JWTs from trusted OIDC issuers, checked against their JWKS.

Refusals carry a reason a client can act on (expired, wrong audience, unknown issuer, bad
signature); the API turns them into 401 problems with a WWW-Authenticate header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from cityhub.governance.identity import InvalidClaims, Principal, principal_from_claims
from cityhub.governance.jwks import KeySet, UnknownKey

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
LEEWAY_S = 30.0


class AuthenticationFailed(Exception):
    """The request's credentials were missing or refused; `reason` says which."""

    def __init__(self, reason: str, *, error: str = "invalid_token") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error  # RFC 6750 error code for WWW-Authenticate


@dataclass(frozen=True)
class TrustedIssuer:
    """An OIDC issuer whose tokens the hub accepts, for `audience`."""

    issuer: str
    audience: str
    keys: KeySet


class TokenVerifier:
    """Verifies a compact JWT against the trusted issuers and returns its principal."""

    def __init__(self, issuers: list[TrustedIssuer]) -> None:
        self._issuers = {i.issuer: i for i in issuers}

    @property
    def issuers(self) -> list[str]:
        return sorted(self._issuers)

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            unverified: Mapping[str, Any] = jwt.decode(token, options={"verify_signature": False})
        except jwt.DecodeError:
            raise AuthenticationFailed("the bearer token is not a well-formed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise AuthenticationFailed(f"token algorithm {algorithm!r} is not accepted "
                                       f"(use one of {', '.join(ALGORITHMS)})")
        issuer = self._issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise AuthenticationFailed(f"token issuer {unverified.get('iss')!r} is not trusted")
        try:
            key = issuer.keys.key(header.get("kid"))
        except UnknownKey as error:
            raise AuthenticationFailed(str(error)) from None
        try:
            claims = jwt.decode(
                token, key=key.key, algorithms=[algorithm], audience=issuer.audience,
                issuer=issuer.issuer, leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationFailed(
                f"the token is not meant for this hub (audience must be {issuer.audience!r})"
            ) from None
        except jwt.InvalidIssuerError:
            raise AuthenticationFailed("the token's issuer does not match its key") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationFailed("the token's signature does not verify") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationFailed("the token is not valid yet") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthenticationFailed(f"the token lacks the {error.claim!r} claim") from None
        except jwt.InvalidTokenError as error:
            raise AuthenticationFailed(f"the token is invalid: {error}") from None
        try:
            return principal_from_claims(claims)
        except InvalidClaims as error:
            raise AuthenticationFailed(f"the token's claims are invalid: {error}") from None
