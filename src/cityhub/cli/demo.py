"""`cityhub demo`: the whole platform on embedded defaults, with the operations page.

The command composes components (cityhub.web.orchestrator) and starts them in order: the hub
(SQLite under the data dir, in this process), the district, its live pulse and the page.
A second run finds the district in the store and resumes from its stored values.

Not on this build yet (the lead wires them here once merged): the embedded MQTT broker, the edge
agent and the device simulator (bus/, edge/, devices/), and the SUMO twin driven by cityhub's
signal controller (sandbox/). Until then the generated sample district (web/sample_district.py)
and its pulse stand in for the twin and the simulator.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Annotated

import typer

from cityhub.cli.common import configure_logging, console, fail, free_port, load_settings
from cityhub.config import Settings
from cityhub.web import sample_district as sd
from cityhub.web.hub_client import HubClient, restore, seed
from cityhub.web.orchestrator import Component, Orchestrator, StartError, Ticker

HOST = "127.0.0.1"
SCENARIOS = {"sample": "generated grid district (stand-in until the SUMO twin lands)"}
PULSE_PERIOD_S = 2.0  # seconds between two district updates at --speed 1
NOT_YET = ("embedded MQTT broker", "edge agent", "device simulator", "SUMO twin")


class HubThread:
    """The hub (uvicorn) in a thread of this process, stoppable without signals."""

    def __init__(self, settings: Settings, port: int) -> None:
        import uvicorn

        from cityhub.api.app import create_app

        config = uvicorn.Config(create_app(settings), host=HOST, port=port, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="hub", daemon=True)
        self.url = f"http://{HOST}:{port}"

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the hub did not come up (see the log above)")
            time.sleep(0.05)
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def components(settings: Settings, port: int, scenario: str, speed: float,
               devices: int) -> list[Component]:
    """The demo's parts, in start order."""
    hub = HubThread(settings, port)
    client = HubClient(hub.url)
    state = sd.build(size=4, sensors=devices)
    pulse = sd.Pulse(state, sensors_per_tick=max(1, min(50, devices // 5)))
    ticker = Ticker("district-pulse", PULSE_PERIOD_S / speed,
                    lambda: client.upsert(pulse.tick(), update=True))

    def start_district() -> str:
        if client.exists(sd.CITY_INDEX_ID):
            restore(client, state)
            return f"resumed from {settings.resolved_store_url().split('@')[-1]}"
        return f"seeded {seed(client, state)} entities"

    def start_pulse() -> str:
        ticker.start()
        return f"every {ticker.period_s:.1f} s ({len(state.roads)} roads, {devices} sensors)"

    def check_page() -> str:
        status = client.page_status("/")
        if status != 200:
            raise RuntimeError(f"the page answered HTTP {status}")
        return hub.url + "/"

    return [
        Component("hub", hub.start, hub.stop, "NGSI-LD API at /ngsi-ld/v1, OpenAPI at /docs"),
        Component("district", start_district, what=f"{scenario}: {SCENARIOS[scenario]}"),
        Component("district pulse", start_pulse, ticker.stop,
                  "stand-in for the SUMO twin and device simulator"),
        Component("operations page", check_page, client.close, "live district page"),
    ]


def demo(
    scenario: Annotated[str, typer.Option(
        help="District to run: 'sample' (a generated grid). RESCO scenarios come with the "
        "SUMO twin.")] = "sample",
    speed: Annotated[float, typer.Option(min=0.1, max=100.0,
                                         help="Simulation speed factor (1 = real time).")] = 1.0,
    devices: Annotated[int, typer.Option(min=1, max=100_000,
                                         help="Number of simulated sensors.")] = 40,
    port: Annotated[int, typer.Option(help="Port of the hub and page; a free one is taken if "
                                      "busy.")] = 8000,
) -> None:
    """Run the demo: the hub, a living district and the operations page on embedded defaults.

    Data stays in the data dir (./.cityhub, or CITYHUB_DATA_DIR): a second run resumes from it.
    Stop with Ctrl-C.
    """
    if scenario not in SCENARIOS:
        raise fail(f"unknown scenario {scenario!r}: this build has {', '.join(SCENARIOS)}")
    settings = load_settings()
    configure_logging("warning")
    if "CITYHUB_AUTH" not in os.environ:  # its publishers and page send no tokens yet
        settings.auth = "disabled"  # HOST is loopback
        console.print("[yellow]demo: authentication is off on this loopback demo "
                      "(CITYHUB_AUTH=enabled keeps it on)[/]")
    chosen = free_port(HOST, port)
    if chosen != port:
        console.print(f"port {port} is busy: using {chosen} instead")
    settings.public_url = settings.public_url or f"http://{HOST}:{chosen}"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    orchestrator = Orchestrator(console)
    for component in components(settings, chosen, scenario, speed, devices):
        orchestrator.add(component)
    try:  # Ctrl-C at any point, even while starting, stops what has started
        try:
            orchestrator.start_all()
        except StartError as error:
            raise fail(str(error)) from None
        console.print(orchestrator.table())
        console.print(f"not on this build yet: {', '.join(NOT_YET)}")
        console.print(f"open [bold]http://{HOST}:{chosen}/[/] - Ctrl-C stops everything")
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping ...")
    finally:
        orchestrator.stop_all()
