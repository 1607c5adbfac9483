"""Every protected route answers 401 without a valid token; tokens of any OIDC issuer are
accepted through its JWKS (file or URL, with key rotation); expired, forged, wrong-audience
and wrong-issuer tokens are refused with a reason."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cityhub.api.app import create_app
from cityhub.api.auth import DEVICE_CREDENTIAL_PREFIX, PUBLIC_PATHS
from cityhub.config import Settings
from cityhub.governance.jwks import KeySet, UnknownKey
from tests.governance.conftest import API, Hub

IDP = "https://idp.example.org/realms/city"


def protected_routes(hub: Hub) -> list[tuple[str, str]]:
    """Every operation the OpenAPI describes, but the declared public routes and the device
    measurement posts (a device proves itself with its own token: tests/devices)."""
    out = []
    for path, operations in hub.app.openapi()["paths"].items():
        if path not in PUBLIC_PATHS and not path.startswith(DEVICE_CREDENTIAL_PREFIX):
            out += [(method.upper(), re.sub(r"\{[^}]+\}", "x", path)) for method in operations]
    return out


async def test_every_protected_route_answers_401_without_a_token(hub: Hub) -> None:
    routes = protected_routes(hub)
    assert len(routes) > 40  # the NGSI-LD API, catalogue, sharing, whoami
    for method, path in routes:
        response = await hub.http.request(method, path)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith('Bearer realm="cityhub"')


async def test_public_routes_need_no_token(hub: Hub) -> None:
    for path in ("/health", "/openapi.json", "/auth/jwks.json",
                 "/.well-known/openid-configuration", "/catalogue/dcat"):
        assert (await hub.http.get(path)).status_code == 200, path
    keys = (await hub.http.get("/auth/jwks.json")).json()["keys"]
    assert keys
    assert all("d" not in key for key in keys)


async def test_a_builtin_token_names_its_principal(hub: Hub) -> None:
    who = await hub.http.get("/auth/whoami", headers=hub.token("tina"))
    assert who.json() == {"subject": "tina", "issuer": "urn:cityhub:issuer", "kind": "staff",
                          "department": "transport", "roles": [], "clearance": "sensitive"}


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk_of(key: Any, kid: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else \
        jwt.algorithms.ECAlgorithm
    public: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig"}


def sign(key: Any, kid: str, *, alg: str = "RS256", **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": IDP, "aud": "cityhub", "sub": "alice", "iat": now, "exp": now + 600,
              "principal_type": "staff", "department": "ecology", "clearance": "internal",
              "realm_access": {"roles": ["analyst"]}, **overrides}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=alg,
                      headers={"kid": kid})


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    return tmp_path / "jwks.json"


@pytest.fixture
async def idp_hub(hub: Hub, jwks_file: Path, tmp_path: Path) -> Iterator[httpx.AsyncClient]:
    settings = Settings(data_dir=tmp_path / "d2", store_url=f"sqlite:///{tmp_path / 'h2.db'}",
                        notify_workers=0, auth_issuers={IDP: str(jwks_file)})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def write_jwks(path: Path, keys: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"keys": keys}))


async def whoami(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.get("/auth/whoami", headers={"Authorization": f"Bearer {token}"})


async def test_an_oidc_issuer_is_trusted_through_its_jwks_file(
        idp_hub: httpx.AsyncClient, jwks_file: Path) -> None:
    key, ec_key = rsa_key(), ec.generate_private_key(ec.SECP256R1())
    write_jwks(jwks_file, [jwk_of(key, "k1"), jwk_of(ec_key, "e1")])
    accepted = await whoami(idp_hub, sign(key, "k1"))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["roles"] == ["analyst"]
    assert accepted.json()["issuer"] == IDP
    assert (await whoami(idp_hub, sign(ec_key, "e1", alg="ES256"))).status_code == 200


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"aud": "another-service"}, "audience"),
    ({"iss": "https://evil.example.org"}, "not trusted"),
    ({"sub": None}, "'sub'"),
    ({"clearance": "top-secret"}, "clearance"),
])
async def test_bad_tokens_are_refused_with_a_reason(
        idp_hub: httpx.AsyncClient, jwks_file: Path, overrides: dict[str, Any],
        reason: str) -> None:
    key = rsa_key()
    write_jwks(jwks_file, [jwk_of(key, "k1")])
    refused = await whoami(idp_hub, sign(key, "k1", **overrides))
    assert refused.status_code == 401
    assert reason in refused.json()["detail"]
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


async def test_forged_and_malformed_tokens_are_refused(idp_hub: httpx.AsyncClient,
                                                       jwks_file: Path) -> None:
    key, forger = rsa_key(), rsa_key()
    write_jwks(jwks_file, [jwk_of(key, "k1")])
    forged = await whoami(idp_hub, sign(forger, "k1"))
    assert forged.status_code == 401
    assert "signature" in forged.json()["detail"]
    assert (await whoami(idp_hub, "not.a.jwt")).status_code == 401
    hs = jwt.encode({"iss": IDP, "sub": "x", "aud": "cityhub", "exp": 2**33}, "secret" * 6,
                    algorithm="HS256")
    assert "algorithm" in (await whoami(idp_hub, hs)).json()["detail"]
    basic = await idp_hub.get("/auth/whoami", headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401
    assert "Bearer" in basic.json()["detail"]


def test_key_rotation_reloads_on_an_unknown_kid(jwks_file: Path) -> None:
    from cityhub.governance.jwks import file_loader

    old, new = rsa_key(), rsa_key()
    jwks_file.write_text(json.dumps({"keys": [jwk_of(old, "old")]}))
    keys = KeySet(file_loader(jwks_file), min_refresh_s=0.0)
    assert keys.key("old")
    with pytest.raises(UnknownKey):
        keys.key("new")
    jwks_file.write_text(json.dumps({"keys": [jwk_of(old, "old"), jwk_of(new, "new")]}))
    assert keys.key("new")
    throttled = KeySet(file_loader(jwks_file), min_refresh_s=3600.0)
    throttled.key("new")
    jwks_file.write_text(json.dumps({"keys": []}))
    with pytest.raises(UnknownKey):  # an unknown kid does not reload again within the limit
        throttled.key("forged-kid")


class _JwksHandler(BaseHTTPRequestHandler):
    document: ClassVar[dict[str, Any]] = {"keys": []}
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = json.dumps(self.document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return


async def test_an_oidc_issuer_is_trusted_through_its_jwks_url(tmp_path: Path) -> None:
    key = rsa_key()
    _JwksHandler.document = {"keys": [jwk_of(key, "u1")]}
    server = HTTPServer(("127.0.0.1", 0), _JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/certs"
        settings = Settings(data_dir=tmp_path / "d", store_url=f"sqlite:///{tmp_path / 'h.db'}",
                            notify_workers=0, auth_issuers={IDP: url})
        app = create_app(settings)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            for _ in range(3):
                assert (await whoami(http, sign(key, "u1"))).status_code == 200
            assert (await http.get(f"{API}/types", headers={
                "Authorization": f"Bearer {sign(key, 'u1')}"})).status_code in (200, 404)
        assert _JwksHandler.hits == 1  # fetched once, then cached
    finally:
        server.shutdown()
        server.server_close()
