"""Documentation that cannot rot: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from cityhub.cli import app
from cityhub.config import Settings

DOCS = Path(__file__).parents[1] / "docs" / "configuration.md"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    text = DOCS.read_text()
    assert f"`{name}`" in text
    assert f"`CITYHUB_{name.upper()}`" in text


def _command_lines(group: typer.Typer, prefix: str) -> list[str]:
    """`cityhub serve`, `cityhub sandbox run`, ...: every command, groups included."""
    lines = [
        f"{prefix} {c.name or (c.callback.__name__ if c.callback else '')}"
        for c in group.registered_commands
    ]
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        lines += _command_lines(sub.typer_instance, f"{prefix} {sub.name}")
    return lines


@pytest.mark.parametrize("command", sorted(_command_lines(app, "cityhub")))
def test_every_command_is_documented(command: str) -> None:
    assert f"`{command}" in DOCS.read_text()
