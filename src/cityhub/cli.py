"""The `cityhub` command: the composition root that wires settings, stores and servers."""

from __future__ import annotations

import logging
import socket
import sys
from typing import Annotated

import typer
from rich.console import Console

from cityhub import __version__

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
    """`preferred` if nobody listens there, else a free port the OS picks."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, preferred))
            return preferred
        except OSError:
            probe.bind((host, 0))
            port: int = probe.getsockname()[1]
            return port


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )


def _run_hub(host: str, port: int, log_level: str) -> None:
    import uvicorn

    from cityhub.config import Settings

    try:
        settings = Settings()
    except Exception as error:  # pydantic's ValidationError: show it as one line
        raise fail(f"invalid CITYHUB_ setting: {error}") from None
    if settings.public_url is None:
        settings.public_url = f"http://{host}:{port}"
    _configure_logging(log_level)
    console.print(
        f"cityhub hub on [bold]http://{host}:{port}[/] "
        f"(NGSI-LD at /ngsi-ld/v1, OpenAPI at /docs), store: "
        f"{settings.resolved_store_url().split('@')[-1]}"
    )
    from cityhub.api.app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level.lower(),
                access_log=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (Orion-LD's 1026 by default).")] = 1026,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Serve the NGSI-LD hub (SQLite in ./.cityhub by default; CITYHUB_STORE_URL for PostgreSQL)."""
    _run_hub(host, port, log_level)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of the hub; a free one is taken if busy.")] = 8000,
) -> None:
    """Run the demo: for now the hub on embedded defaults (SQLite), with a tour in README."""
    chosen = free_port("127.0.0.1", port)
    if chosen != port:
        console.print(f"port {port} is busy: using {chosen} instead")
    _run_hub("127.0.0.1", chosen, "info")


@app.command()
def version() -> None:
    """Print the cityhub version."""
    typer.echo(__version__)


def main() -> None:
    app()
