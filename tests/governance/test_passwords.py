"""Signing in with a password (`POST /auth/login`, `cityhub.governance.passwords`), on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher

from cityhub.api.routers import login
from cityhub.governance.datasets import Tier
from cityhub.governance.identity import PrincipalKind
from cityhub.governance.passwords import Passwords

from .conftest import Hub

SECRET = "correct horse battery"


async def sign_in(hub: Hub, username: str, password: str, **more: str) -> int:
    answer = await hub.http.post("/auth/login", json={"username": username,
                                                      "password": password, **more})
    return answer.status_code


async def test_a_removed_account_takes_its_password_with_it(store_hub: Hub) -> None:
    Passwords(store_hub.issuer.db).set("tina", SECRET)
    assert await sign_in(store_hub, "tina", SECRET) == 200

    store_hub.issuer.remove_account("tina")
    store_hub.issuer.add_account("tina", PrincipalKind.STAFF, "transport", (), Tier.SENSITIVE)

    assert not Passwords(store_hub.issuer.db).has("tina")
    assert await sign_in(store_hub, "tina", SECRET) == 401


async def test_the_password_store_is_made_at_start_up(hub: Hub) -> None:
    made: Passwords = hub.app.state.sign_in.passwords  # before any sign-in
    made.set("eric", SECRET)
    assert await sign_in(hub, "eric", SECRET) == 200
    assert hub.app.state.sign_in.passwords is made


class CountingHasher(PasswordHasher):
    """Counts the checks running at once (each lasts long enough for the others to start)."""

    def __init__(self) -> None:
        super().__init__(memory_cost=8, time_cost=1, parallelism=1)
        self.lock = threading.Lock()
        self.running = self.most = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)
            return super().verify(hash, password)
        finally:
            with self.lock:
                self.running -= 1


async def test_at_most_two_password_checks_run_at_once(hub: Hub) -> None:
    hasher = CountingHasher()
    store = Passwords(hub.issuer.db, hasher)
    store.set("eric", SECRET)
    hub.app.state.sign_in = login.SignIn(store, hub.app.state.sign_in.hashing)
    answers = await asyncio.gather(*(sign_in(hub, "eric", SECRET if n % 2 else "wrong one")
                                     for n in range(10)))
    assert sorted(answers) == [200] * 5 + [401] * 5
    assert 1 <= hasher.most <= login.HASHES  # more without the limit


async def test_a_body_over_the_limit_is_refused_without_being_read(hub: Hub) -> None:
    declared = await hub.http.post("/auth/login", content=b"{" + b" " * login.MAX_BODY + b"}",
                                   headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["type"].endswith("BadRequestData")

    sent = 0

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b" " * 1024

    streamed = await hub.http.post("/auth/login", content=chunks())
    assert streamed.status_code == 413
    assert sent <= login.MAX_BODY // 1024 + 2  # of the 1000 chunks (1 MB)


async def test_the_purpose_is_escaped_in_the_log(hub: Hub,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    hub.app.state.sign_in.passwords.set("eric", SECRET)
    forged = "x\nevent=login user=stella purpose=all"
    with caplog.at_level(logging.INFO, logger=login.__name__):
        assert await sign_in(hub, "eric", SECRET, purpose=forged) == 200
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=login")]
    assert lines == ["event=login user=eric purpose=x\\nevent=login user=stella purpose=all"]
