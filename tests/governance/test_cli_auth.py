"""`cityhub auth ...` as an operator runs it, against a real `cityhub serve` process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from cityhub.cli import free_port
from tests.test_cli import CLI, wait_for_health


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.slow
def test_operator_creates_accounts_and_a_token_the_hub_accepts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYHUB_")}
    assert run(["auth", "department", "transport"], env, tmp_path).returncode == 0
    added = run(["auth", "user", "tina", "-d", "transport", "--clearance", "sensitive"], env,
                tmp_path)
    assert added.returncode == 0, added.stderr
    duplicate = run(["auth", "user", "tina", "-d", "transport"], env, tmp_path)
    assert duplicate.returncode == 1
    assert "exists already" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr
    orphan = run(["auth", "service", "etl", "-d", "nowhere"], env, tmp_path)
    assert orphan.returncode == 1
    assert "no department" in orphan.stderr
    listed = run(["auth", "list"], env, tmp_path).stdout
    assert "staff tina\tdepartment=transport" in listed
    token = run(["auth", "token", "tina", "--hours", "1"], env, tmp_path).stdout.strip()
    port = free_port("127.0.0.1", 0)
    process = subprocess.Popen([*CLI, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process)
        assert httpx.get(f"{url}/ngsi-ld/v1/types").status_code == 401
        who = httpx.get(f"{url}/auth/whoami", headers={"Authorization": f"Bearer {token}"})
        assert who.status_code == 200
        assert who.json()["department"] == "transport"
    finally:
        process.terminate()
        process.communicate(timeout=20)


def test_disabled_auth_is_refused_off_loopback(tmp_path: Path) -> None:
    env = {**os.environ, "CITYHUB_AUTH": "disabled"}
    refused = run(["serve", "--host", "0.0.0.0", "--port", "1"], env, tmp_path)  # noqa: S104
    assert refused.returncode == 1
    assert "CITYHUB_AUTH=disabled is refused on 0.0.0.0" in refused.stderr
    assert "Traceback" not in refused.stderr
