"""A running `cityhub demo` process and Debian's Chromium, shared by the browser tests.

Screenshots go to test-artifacts/e2e/ (git-ignored). With CITYHUB_UPDATE_SCREENSHOT=1 the
overview is also written to docs/img/ops-centre.png, the README's picture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.web.testing import CHROMIUM, RunningHub, launch_chromium, running_cityhub

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "test-artifacts" / "e2e"
README_SHOT = ROOT / "docs" / "img" / "ops-centre.png"
SPEED = 30
DEVICES = 40
START_TIMEOUT_S = 180  # generating the grid and registering devices on a busy 2-core machine


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if os.environ.get("CITYHUB_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and CITYHUB_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture(scope="session")
def demo_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """`cityhub demo` on a free port with a fresh data dir: the twin at 30x real time (a simulated
    minute every 2 s); stopped with Ctrl-C (SIGINT)."""
    data = tmp_path_factory.mktemp("demo")
    with running_cityhub(["demo", "--speed", str(SPEED), "--devices", str(DEVICES)], data,
                         ready_path="/ops/summary", ready_text="Ctrl-C stops everything",
                         timeout_s=START_TIMEOUT_S) as hub:
        yield hub
    assert hub.process.returncode == 0, hub.log()


@pytest.fixture(scope="module")  # Playwright's sync API runs an event loop in this thread until
def browser() -> Iterator[Any]:  # it exits: end it before later (asyncio) test modules run
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, demo_hub: RunningHub, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page on the demo; the test fails if the browser console shows an error."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    outside: list[str] = []  # the page must work offline: nothing but the hub itself
    tab.on("request", lambda r: None if r.url.startswith((demo_hub.url, "data:"))
           else outside.append(r.url))
    tab.goto(demo_hub.url + "/")
    tab.wait_for_function("window.cityhub && window.cityhub.ready", timeout=20_000)
    yield tab
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTEFACTS / f"{request.node.name}-end.png"))
    context.close()
    expected = getattr(request.node, "expected_console_error", None)  # set by a test itself
    errors = [e for e in errors if not (expected and expected in e)]
    assert not errors, f"browser console errors: {errors}"
    assert not outside, f"requests outside the hub: {outside}"


def sign_in(tab: Any, person: str, password: str, purpose: str = "") -> None:
    """Sign in through the page's own form, as a user does; the page reloads as that user."""
    tab.wait_for_function("window.cityhub && window.cityhub.ready", timeout=20_000)
    tab.click("#signin")
    tab.fill("input[name=username]", person)
    tab.fill("input[name=password]", password)
    tab.fill("input[name=purpose]", purpose)
    with tab.expect_navigation():
        tab.click("#login-ok")
    tab.wait_for_function("window.cityhub && window.cityhub.ready", timeout=20_000)


def shoot(tab: Any, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    tab.screenshot(path=str(path))
    return path
