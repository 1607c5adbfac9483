"""Helpers every `cityhub` command shares: the typer app, one-line errors, settings, ports."""

from __future__ import annotations

import logging
import socket
import sys

import typer
from pydantic import ValidationError
from rich.console import Console

from cityhub.config import Settings

app = typer.Typer(
    name="cityhub",
    help="cityhub: an open-source smart-city platform (NGSI-LD hub, edge, city brain).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print one readable line and return the exit to raise (no traceback for users)."""
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


def free_port(host: str, preferred: int) -> int:
    """`preferred` if nobody listens there, else (or for 0) a free port the OS picks.

    The probe binds with SO_REUSEADDR, as uvicorn does: a port whose last server has just
    stopped (connections in TIME_WAIT) is free to listen on again; one with a listener is not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, preferred))
        except OSError:
            probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )


def load_settings() -> Settings:
    """Settings from the environment, or one readable line naming the bad CITYHUB_ variable."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        raise fail(
            f"invalid setting {name} (CITYHUB_{name.upper()}={first.get('input')!r}): "
            f"{first['msg']}"
        ) from None
