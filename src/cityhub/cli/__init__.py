"""The `cityhub` command: the composition root that wires settings, stores and servers.

Each area adds its commands as a typer group in its own module here (`cli/<area>.py`, with
`app = typer.Typer(...)`), registered at the bottom of this file with `app.add_typer`.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cityhub import __version__
from cityhub.cli.common import app, configure_logging, console, fail, free_port, load_settings
from cityhub.config import Settings

GRACE_S = 3  # on Ctrl-C, open pages' event streams are cut after this many seconds


def _check_store(settings: Settings) -> None:
    """Open the store once before serving, so a wrong URL is one line, not a traceback."""
    from cityhub.store import open_store

    url = settings.resolved_store_url()
    try:
        open_store(url).close()
    except Exception as error:  # any driver error: the user needs the URL and the reason
        shown = url.split("@")[-1]
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise fail(f"cannot open the store at {shown}: {reason}") from None


def _run_hub(host: str, port: int, log_level: str, workers: int = 1) -> None:
    import uvicorn

    from cityhub.api.app import create_app

    settings = load_settings()
    if settings.public_url is None:
        settings.public_url = f"http://{host}:{port}"
    configure_logging(log_level)
    if settings.auth == "disabled":
        from cityhub.api.auth import is_loopback

        if not is_loopback(host):
            raise fail(f"CITYHUB_AUTH=disabled is refused on {host}: bind to 127.0.0.1 or ::1")
        console.print("[bold yellow]WARNING: authentication is disabled (CITYHUB_AUTH=disabled)"
                      ": every request has full access; loopback experiments only[/]")
    _check_store(settings)
    console.print(
        f"cityhub hub on [bold]http://{host}:{port}[/] "
        f"(NGSI-LD at /ngsi-ld/v1, OpenAPI at /docs), store: "
        f"{settings.resolved_store_url().split('@')[-1]}"
        + (f", {workers} worker processes" if workers > 1 else "")
    )
    if workers > 1 and settings.bus_url.startswith("memory:"):
        console.print("[bold yellow]WARNING: with the in-process bus each worker's operations "
                      "page shows only that worker's writes: set CITYHUB_BUS_URL=nats://...[/]")
    if workers > 1:
        from cityhub.cli.workers import check_port_free, supervise

        try:
            check_port_free(host, port)
        except OSError as error:
            raise fail(f"cannot listen on {host}:{port}: {error.strerror}") from None
        # Worker processes build their own app from the environment; hub processes share
        # nothing but the store (and the bus, when it is NATS), so they can serve side by side.
        os.environ["CITYHUB_PUBLIC_URL"] = settings.public_url
        if not supervise(host, port, log_level, workers, GRACE_S):
            raise fail(f"the worker processes kept stopping soon after their start; "
                       f"see the log above (port {port})")
        return
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level.lower(),
                access_log=False, timeout_graceful_shutdown=GRACE_S)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535,
                                       help="Port to bind (Orion-LD's 1026 by default).")] = 1026,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
    workers: Annotated[int, typer.Option(min=1, help="Hub processes sharing the port.")] = 1,
) -> None:
    """Serve the NGSI-LD hub (SQLite in ./.cityhub by default; CITYHUB_STORE_URL for PostgreSQL)."""
    _run_hub(host, port, log_level, workers)


@app.command()
def version() -> None:
    """Print the cityhub version."""
    typer.echo(__version__)


from cityhub.cli import audit, sandbox  # noqa: E402 (commands register after the app)
from cityhub.cli import demo as demo_command  # noqa: E402

app.command(name="demo")(demo_command.demo)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(audit.app, name="audit")

from cityhub.cli import devices as _devices  # noqa: E402 - groups register after the app
from cityhub.cli import edge as _edge  # noqa: E402
from cityhub.cli import simulate as _simulate  # noqa: E402

app.add_typer(_edge.app, name="edge")
app.add_typer(_devices.app, name="devices")
app.add_typer(_simulate.app, name="simulate")

__all__ = ["app", "fail", "free_port", "load_settings"]

from cityhub.cli import auth  # noqa: E402 - command groups register after the app exists

app.add_typer(auth.app, name="auth")
