"""Driving the page from outside: a `cityhub` process on a free port, and Debian's Chromium.

The browser tests (tests/e2e) and bench/page.py share these, so both measure the real thing:
a separate `cityhub demo` or `cityhub serve` process, and the system Chromium
(`/usr/bin/chromium`, never a downloaded browser) driven by Playwright.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cityhub.cli.common import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class RunningHub:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def data_dir(self) -> Path:
        return self.log_path.parent

    def service_token(self, name: str) -> dict[str, str]:
        """Headers with the bearer token `cityhub demo` gave a service account."""
        token = (self.data_dir / "demo" / "tokens" / f"{name}.token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def password(self, person: str) -> str:
        """The password `cityhub demo` set for one of its demo people."""
        import json

        passwords: dict[str, str] = json.loads(
            (self.data_dir / "demo" / "accounts.json").read_text())
        return passwords[person]


@contextmanager
def running_cityhub(args: list[str], data_dir: Path, ready_path: str = "/health",
                    ready_text: str | None = None, timeout_s: float = 60.0,
                    env: dict[str, str] | None = None) -> Iterator[RunningHub]:
    """Run `cityhub <args> --port <free>` with its data in `data_dir` until the block ends.

    Ready once `ready_path` answers 200 and, if given, `ready_text` is in its output.
    Stops it with SIGINT (what Ctrl-C sends) and waits; the exit code is left on the process.
    """
    port = free_port("127.0.0.1", 0)
    env = {**os.environ, **(env or {}), "CITYHUB_DATA_DIR": str(data_dir)}
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"cityhub-{port}.log"
    command = [str(Path(sys.executable).parent / "cityhub"), *args, "--port", str(port)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)  # noqa: S603
    hub = RunningHub(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(hub, ready_path, ready_text, timeout_s)
        yield hub
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(hub: RunningHub, path: str, text: str | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            raise RuntimeError(f"cityhub exited early ({hub.process.returncode}):\n{hub.log()}")
        try:
            if httpx.get(hub.url + path, timeout=2).status_code == 200 and (
                    text is None or text in hub.log()):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"cityhub did not answer {path} within {timeout_s} s:\n{hub.log()}")


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, through Playwright (no browser download)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                      headless=True)
