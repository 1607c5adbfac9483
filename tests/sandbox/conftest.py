"""A small generated district shared by the sandbox tests (2x2 signalised grid, 5 minutes)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityhub.sandbox.generate import Demand, grid
from cityhub.sandbox.scenarios import Scenario

CLI = [sys.executable, "-c", "from cityhub.cli import app; app()"]


@pytest.fixture(scope="session")
def small_grid(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return grid(tmp_path_factory.mktemp("grid"), 2, 2, Demand(900, 300, seed=7), lanes=1)


def cli(*args: str, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`cityhub ...` as its own process (libsumo: one simulation per process)."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          check=False, timeout=300)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[str]:
    """A real hub process on a free port (SQLite in tmp_path)."""
    import os

    from cityhub.cli import free_port
    from tests.test_cli import wait_for_health

    port = free_port("127.0.0.1", 0)
    env = {**os.environ, "CITYHUB_DATA_DIR": str(tmp_path / "hubdata"),
           "CITYHUB_AUTH": "disabled"}  # loopback hub; the twin publishes without a token
    process = subprocess.Popen([*CLI, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process, seconds=120)  # a loaded 2-core machine starts slowly
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=10)
