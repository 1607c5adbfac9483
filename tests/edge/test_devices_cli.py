"""`cityhub devices ...` against a running hub with authentication on (point 1: registry by
API and CLI)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import httpx

from tests.edge.conftest import BIN, Hub


def cli(hub: Hub, tenant: str, *args: str, token: str | None = None) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "CITYHUB_TOKEN"}
    if token is not None:
        env["CITYHUB_TOKEN"] = token
    return subprocess.run([str(BIN / "cityhub"), "devices", *args, "--hub", hub.url,
                           "--tenant", tenant], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_register_list_revoke_and_dead_letters_from_the_command_line(
        hub: Hub, tenant: str) -> None:
    token = hub.headers["Authorization"].removeprefix("Bearer ")
    refused = cli(hub, tenant, "register", "em-1", "--type", "EnergyMeter", "--owner", "test",
                  "--lon", "116.4", "--lat", "39.9")
    assert refused.returncode != 0
    assert "401" in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr
    made = cli(hub, tenant, "register", "em-1", "--type", "EnergyMeter", "--owner", "test",
               "--lon", "116.4", "--lat", "39.9", "--token", token)
    assert made.returncode == 0, made.stderr
    device_token = made.stdout.strip().splitlines()[-1]
    assert len(device_token) >= 24
    listed = cli(hub, tenant, "list", token=token)  # CITYHUB_TOKEN from the environment
    assert listed.stdout.split("\t")[:4] == ["em-1", "EnergyMeter", "test", "ok"]
    assert cli(hub, tenant, "revoke", "em-1", token=token).returncode == 0
    assert "\trevoked\t" in cli(hub, tenant, "list", token=token).stdout
    refused_post = httpx.post(f"{hub.url}/ingest/v1/devices/em-1/measurements",
                              headers={"NGSILD-Tenant": tenant,
                                       "Authorization": f"Bearer {device_token}"},
                              json={"values": {"activePower": 1.5}}, timeout=10)
    assert refused_post.status_code == 401
    letters = cli(hub, tenant, "dead-letters", token=token)
    assert letters.returncode == 0, letters.stderr
    assert "1 dead letters" in letters.stderr
    assert "device is revoked" in letters.stdout
