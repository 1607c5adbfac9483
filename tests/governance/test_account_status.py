"""A disabled or removed account's tokens are refused at once (401 naming why), on SQLite and
PostgreSQL; changes made by another process (`cityhub auth disable`) hold within the account
cache's lifetime."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from cityhub.cli import app
from cityhub.governance.accounts import AccountStatus

from .conftest import API, Hub


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_disabled_account_is_refused_at_once_and_enabled_again(store_hub: Hub) -> None:
    eric = store_hub.token("eric")
    assert (await store_hub.http.get("/auth/whoami", headers=eric)).status_code == 200

    disabled = await store_hub.http.post("/auth/accounts/eric/disable",
                                         headers=store_hub.token("stella"))
    assert disabled.status_code == 204, disabled.text

    for path in ("/auth/whoami", f"{API}/entities?type=ParkingSpot"):
        refused = await store_hub.http.get(path, headers=eric)
        assert refused.status_code == 401, refused.text
        assert refused.json()["detail"] == ("account 'eric' is disabled: its tokens are no "
                                            "longer accepted")
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert any(e.action == "account.disable" and e.subject == "eric"
               and e.actor.endswith("#stella")
               for e in store_hub.audit.events)

    enabled = await store_hub.http.post("/auth/accounts/eric/enable",
                                        headers=store_hub.token("stella"))
    assert enabled.status_code == 204
    assert (await store_hub.http.get("/auth/whoami", headers=eric)).status_code == 200


async def test_a_removed_account_is_refused(store_hub: Hub) -> None:
    tina = store_hub.token("tina")
    assert (await store_hub.http.get("/auth/whoami", headers=tina)).status_code == 200
    removed = await store_hub.http.delete("/auth/accounts/tina",
                                          headers=store_hub.token("stella"))
    assert removed.status_code == 204
    refused = await store_hub.http.get("/auth/whoami", headers=tina)
    assert refused.status_code == 401
    assert "account 'tina' no longer exists" in refused.json()["detail"]
    again = await store_hub.http.delete("/auth/accounts/tina", headers=store_hub.token("stella"))
    assert again.status_code == 404


async def test_only_stewards_disable_accounts(hub: Hub) -> None:
    refused = await hub.http.post("/auth/accounts/eric/disable", headers=hub.token("tina"))
    assert refused.status_code == 403
    assert "cityhub:identity" in refused.json()["detail"]
    assert (await hub.http.get("/auth/whoami", headers=hub.token("eric"))).status_code == 200


async def test_a_disable_from_another_process_holds_within_the_cache_lifetime(
        store_hub: Hub, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    access = store_hub.app.state.access
    access.accounts = AccountStatus(access.issuer, ttl_s=2.0, clock=clock)
    eric = store_hub.token("eric")
    assert (await store_hub.http.get("/auth/whoami", headers=eric)).status_code == 200

    monkeypatch.setenv("CITYHUB_STORE_URL", store_url)
    result = CliRunner().invoke(app, ["auth", "disable", "eric"])
    assert result.exit_code == 0, result.output
    assert "disabled eric" in result.output

    clock.now += 1.0  # within the lifetime the hub still answers from its cache
    assert (await store_hub.http.get("/auth/whoami", headers=eric)).status_code == 200
    clock.now += 1.5  # past it, the store is read again
    refused = await store_hub.http.get("/auth/whoami", headers=eric)
    assert refused.status_code == 401
    assert "account 'eric' is disabled" in refused.json()["detail"]

    unknown = CliRunner().invoke(app, ["auth", "disable", "nobody"])
    assert unknown.exit_code == 1
    assert unknown.output.strip().endswith("no account 'nobody'")


async def test_key_rotation_keeps_older_tokens_valid(hub: Hub) -> None:
    before = hub.token("eric")
    hub.issuer.rotate_key()
    after = hub.token("eric")
    assert before != after
    for token in (before, after):
        assert (await hub.http.get("/auth/whoami", headers=token)).status_code == 200


async def test_the_live_stream_of_a_disabled_account_ends(hub: Hub) -> None:
    # the in-process transport answers once the stream has ended: before the fix, only at
    # the token's expiry (8 h away)
    eric = hub.token("eric")
    stream = asyncio.ensure_future(hub.http.get("/ops/events", headers=eric))
    await asyncio.sleep(0.3)  # the stream is running
    assert not stream.done()
    hub.app.state.access.accounts.disable("eric")
    answer = await asyncio.wait_for(stream, 30)
    assert answer.status_code == 200
    assert answer.text.startswith("retry: 1000\nevent: hello")
    again = await hub.http.get("/ops/events", headers=eric)
    assert again.status_code == 401  # the reader is decided again, and refused
