"""Documentation that cannot rot: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityhub.cli import app
from cityhub.config import Settings

DOCS = Path(__file__).parents[1] / "docs" / "configuration.md"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    text = DOCS.read_text()
    assert f"`{name}`" in text
    assert f"`CITYHUB_{name.upper()}`" in text


@pytest.mark.parametrize(
    "command", sorted(c.name or (c.callback.__name__ if c.callback else "") for c in
                      app.registered_commands)
)
def test_every_command_is_documented(command: str) -> None:
    assert f"`cityhub {command}" in DOCS.read_text()
