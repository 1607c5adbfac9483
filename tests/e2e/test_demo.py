"""`cityhub demo` as a user runs it: help, a clean Ctrl-C, and a second run that resumes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cityhub.web import sample_district as sd
from cityhub.web.testing import running_cityhub

pytestmark = pytest.mark.slow
CITYHUB = str(Path(sys.executable).parent / "cityhub")


def test_demo_help_explains_the_options() -> None:
    out = subprocess.run([CITYHUB, "demo", "--help"], capture_output=True, text=True, check=True,
                         env={"COLUMNS": "160", "PATH": ""}).stdout
    for option in ("--scenario", "--speed", "--devices", "--port"):
        assert option in out


def history(url: str) -> int:
    answer = httpx.get(f"{url}/ngsi-ld/v1/temporal/entities/{sd.CITY_INDEX_ID}",
                       params={"attrs": "congestionIndex", "options": "temporalValues"})
    return len(answer.json()["congestionIndex"]["values"])


def test_a_second_run_resumes_from_the_stored_district(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_cityhub(["demo", "--speed", "10"], data, ready_path="/ops/summary",
                         ready_text="Ctrl-C stops everything") as first:
        first_count = history(first.url)
    assert first.process.returncode == 0, first.log()  # Ctrl-C stops everything cleanly
    assert "seeded 98 entities" in first.log()
    assert "stopped hub" in first.log()
    with running_cityhub(["demo", "--speed", "10"], data, ready_path="/ops/summary",
                         ready_text="Ctrl-C stops everything") as second:
        assert history(second.url) >= first_count
    assert second.process.returncode == 0, second.log()
    assert "resumed from" in second.log()
    assert "seeded" not in second.log()
