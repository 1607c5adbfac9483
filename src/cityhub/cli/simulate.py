"""`cityhub simulate devices`: simulated sensors publishing diurnal patterns over MQTT."""

from __future__ import annotations

from typing import Annotated

import typer

from cityhub.cli.common import configure_logging, console, fail

app = typer.Typer(help="Simulators that feed the platform.", no_args_is_help=True)


@app.command()
def devices(
    count: Annotated[int, typer.Option(min=1, max=100_000, help="Devices to simulate.")] = 14,
    rate: Annotated[float, typer.Option(min=0.01, help="Messages per second, in total.")] = 10.0,
    hub: Annotated[str, typer.Option(help="Hub URL (devices are registered there).")] =
        "http://127.0.0.1:1026",
    broker: Annotated[str, typer.Option(help="MQTT broker host:port the edge listens to.")] =
        "127.0.0.1:1883",
    tenant: Annotated[str, typer.Option(help="Tenant (empty: the default tenant).")] = "",
    owner: Annotated[str, typer.Option(help="Owning department of the devices.")] = "sim",
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    clock_speed: Annotated[float, typer.Option(min=0.001,
                                               help="Simulated hours per real hour.")] = 1.0,
    token: Annotated[str | None, typer.Option(
        envvar="CITYHUB_TOKEN", help="Bearer token for a hub with authentication.")] = None,
) -> None:
    """Register COUNT devices of every type on the hub and publish RATE msg/s via MQTT."""
    import httpx

    from cityhub.edge.simulator import Simulator, provision

    configure_logging("warning")
    host, _, port_text = broker.rpartition(":")
    if not host or not port_text.isdigit():
        raise fail(f"--broker must be host:port, not {broker!r}")
    try:
        simulated = provision(hub, tenant, count, owner, token=token)
    except httpx.HTTPError as error:
        raise fail(f"cannot register devices at {hub}: {error}") from None
    console.print(f"simulating {len(simulated)} devices at {rate:g} msg/s on {broker}")
    simulator = Simulator(simulated, host, int(port_text), rate, clock_speed)
    try:
        sent = simulator.run(duration)
    except OSError as error:
        raise fail(f"cannot reach the MQTT broker at {broker}: {error}") from None
    except KeyboardInterrupt:
        sent = simulator.sent
    console.print(f"sent {sent} messages")
