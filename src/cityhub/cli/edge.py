"""`cityhub edge --config edge.toml` (the edge agent) and `cityhub edge broker` (the embedded
MQTT broker, for machines without Mosquitto)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from cityhub.cli.common import configure_logging, console, fail

app = typer.Typer(help="The edge agent next to a local MQTT broker (see docs/edge.md).",
                  invoke_without_command=True, no_args_is_help=False)


@app.callback()
def edge(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(help="The agent's edge.toml.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the edge agent: MQTT intake, rules, windows, outbox, forwarding to the hub."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        raise fail("give the agent's settings: cityhub edge --config edge.toml")
    from cityhub.edge.agent import EdgeAgent
    from cityhub.edge.config import ConfigError, load_config

    configure_logging(log_level)
    try:
        settings = load_config(config)
    except ConfigError as error:
        raise fail(str(error)) from None
    agent = EdgeAgent(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"cityhub edge: broker {settings.mqtt_host}:{settings.mqtt_port}, hub "
                  f"{settings.hub_url} over {settings.transport}, outbox {settings.outbox_path}")
    agent.start()
    try:
        while not stop.wait(10.0):
            agent.log_status()
    except KeyboardInterrupt:
        pass
    finally:
        agent.stop()


@app.command()
def broker(
    port: Annotated[int, typer.Option(min=1, max=65535,
                                       help="Port; a free one is taken when busy.")] = 1883,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Run the embedded MQTT broker (amqtt) until interrupted; prints the port it took."""
    from cityhub.edge.broker import EmbeddedBroker

    configure_logging("warning")
    running = EmbeddedBroker.in_thread(host, port)
    console.print(f"MQTT broker on {running.url}")
    typer.echo(running.url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        running.stop_thread()
