"""`cityhub demo`: the whole platform on embedded defaults, with the operations page.

Started in order (cityhub.web.orchestrator), stopped in reverse on Ctrl-C:

    identities       departments, the district's datasets, service accounts for the twin and
                     the devices, demo people with passwords, a grant (web.demo_identity)
    hub              uvicorn in this process, SQLite under the data dir, authentication on
    MQTT broker      amqtt in a thread of this process, 1883 or a free port
    district         the generated grid (or a RESCO scenario), generated once into the data dir
    edge agent       `cityhub edge --config DATA/demo/edge.toml`, its own process
    device simulator python -m cityhub.web.devices_worker, its own process
    SUMO twin        python -m cityhub.web.twin_worker, its own process (libsumo: one simulation
                     per process), paced to real time x --speed, restarted when the run ends
    operations page  served by the hub at /

A second run resumes: the hub's store, the accounts and passwords, the generated network and the
devices' tokens are in the data dir (./.cityhub, or CITYHUB_DATA_DIR).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.table import Table

from cityhub.cli.common import configure_logging, console, fail, free_port, load_settings
from cityhub.config import Settings
from cityhub.sandbox.scenarios import Scenario
from cityhub.web.children import ChildProcess, cityhub_command, module_command, wait_for
from cityhub.web.demo_identity import DEVICE_OWNER, DEVICES, PEOPLE, TWIN, DemoIdentity, prepare
from cityhub.web.district import (
    GENERATED,
    DemoPaths,
    footprint,
    prepare_scenario,
    write_edge_config,
)
from cityhub.web.hub_client import HubClient
from cityhub.web.orchestrator import Component, Orchestrator, StartError

HOST = "127.0.0.1"
DEFAULT_SCENARIO = "grid"
MQTT_PORT = 1883
MESSAGES_PER_DEVICE_MINUTE = 1.0  # each simulated device reports about once a minute at 1x
MAX_RATE = 500.0


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


class BrokerPart:
    """The embedded MQTT broker (edge.broker) in a thread of this process."""

    def __init__(self) -> None:
        self.broker: object | None = None
        self.port = 0

    def start(self) -> str:
        from cityhub.edge.broker import EmbeddedBroker

        broker = EmbeddedBroker.in_thread(HOST, MQTT_PORT)
        self.broker, self.port = broker, broker.port
        busy = "" if broker.port == MQTT_PORT else f" ({MQTT_PORT} is busy)"
        return f"{broker.url}{busy}"

    def stop(self) -> None:
        from cityhub.edge.broker import EmbeddedBroker

        if isinstance(self.broker, EmbeddedBroker):
            self.broker.stop_thread()


def _exited(name: str, code: int) -> None:
    if name == "SUMO twin" and code == 0:
        console.print("[dim]SUMO twin: the scenario ended, starting the next run[/]")
    else:
        console.print(f"[yellow]{name} exited with {code}[/] (see its log in the data dir)")


class IdentityPart:
    """Accounts, datasets and tokens in the hub's store, made before the hub opens it."""

    def __init__(self, settings: Settings, root: Path) -> None:
        self.settings = settings
        self.root = root
        self.made: DemoIdentity | None = None

    def start(self) -> str:
        from cityhub.store import open_store

        store = open_store(self.settings.resolved_store_url())
        try:
            self.made = prepare(store.db, self.settings.auth_issuer, self.settings.auth_audience,
                                self.root, self.settings.datasets_file)
        finally:
            store.close()
        self.settings.edge_token = SecretStr(self.made.edge_token)
        return f"{len(PEOPLE)} people, {len(self.made.tokens)} service accounts; passwords in " \
            f"{self.made.accounts}"

    def token(self, name: str) -> str:
        assert self.made is not None
        return str(self.made.tokens[name])

    def people(self) -> Table:
        table = Table("sign in as", "password", "sees", title="demo accounts (page: Sign in)")
        passwords = self.made.passwords if self.made else {}
        for person in PEOPLE:
            table.add_row(person.name, passwords.get(person.name, "?"), person.role)
        return table


def components(settings: Settings, port: int, scenario: str, speed: float,
               devices: int, identity: IdentityPart) -> list[Component]:
    """The demo's parts, in start order."""
    paths = DemoPaths(settings.data_dir / "demo")
    hub = HubThread(settings, port)
    client = HubClient(hub.url)
    broker = BrokerPart()
    prepared: list[Scenario] = []  # the district, once prepared
    rate = min(MAX_RATE, max(1.0, devices * MESSAGES_PER_DEVICE_MINUTE / 60.0 * speed))
    edge = ChildProcess("edge agent", cityhub_command(
        "edge", "--config", str(paths.edge_config), "--log-level", "warning"),
        paths.log("edge"), on_exit=_exited)
    twin = ChildProcess("SUMO twin", [], paths.log("twin"), restart=True, on_exit=_exited)
    simulator = ChildProcess("device simulator", [], paths.log("devices"), on_exit=_exited)

    def start_district() -> str:
        try:
            found, generated = prepare_scenario(scenario, paths, settings.scenario_dir)
        except Exception as error:  # a SUMO tool or a missing RESCO folder: one line
            raise RuntimeError(str(error)) from None
        prepared.append(found)
        how = "generated now" if generated else "reused" if scenario in GENERATED else \
            "read in place"
        return f"{found.config} ({how})"

    def start_edge() -> str:
        token = settings.edge_token.get_secret_value() if settings.edge_token else None
        write_edge_config(paths, HOST, broker.port, hub.url, token)
        return edge.start()

    def start_simulator() -> str:
        lon, lat, half_lon, half_lat = footprint(prepared[0].net)  # devices stand in it
        simulator.command = module_command(
            "cityhub.web.devices_worker", "--count", str(devices), "--rate", f"{rate:.3g}",
            "--broker", f"{HOST}:{broker.port}", "--hub", hub.url, "--store",
            str(paths.devices), "--centre", f"{lon},{lat}", "--spread", f"{half_lon},{half_lat}",
            "--owner", DEVICE_OWNER, "--token-file", identity.token(DEVICES))
        where = simulator.start()
        wait_for(lambda: "devices:" in simulator.output(), 120,
                 "the devices were not registered", simulator)
        return f"{devices} devices at {rate:.3g} msg/s; {where}"

    def start_twin() -> str:
        twin.command = module_command(
            "cityhub.web.twin_worker", "--scenario", str(prepared[0].config),
            "--hub", hub.url, "--speed", f"{speed:g}", "--out", str(paths.twin),
            "--token-file", identity.token(TWIN))
        return f"{speed:g}x real time, controller cityhub; {twin.start()}"

    def check_page() -> str:
        status = client.page_status("/")
        if status != 200:
            raise RuntimeError(f"the page answered HTTP {status}")
        return hub.url + "/"

    store = settings.resolved_store_url().split("@")[-1]
    return [
        Component("identities", identity.start, what="accounts, datasets, a grant, tokens"),
        Component("hub", hub.start, hub.stop, f"NGSI-LD API at /ngsi-ld/v1, store {store}"),
        Component("MQTT broker", broker.start, broker.stop, "embedded amqtt"),
        Component("district", start_district, what=f"SUMO scenario {scenario!r}"),
        Component("edge agent", start_edge, edge.stop, f"MQTT -> hub, {paths.edge_config}"),
        Component("device simulator", start_simulator, simulator.stop,
                  f"tokens kept in {paths.devices}"),
        Component("SUMO twin", start_twin, twin.stop,
                  "publishes roads, flows, signals, congestion each simulated minute"),
        Component("operations page", check_page, client.close, "live district page"),
    ]


def interruptible() -> None:
    """Ctrl-C, `kill -INT` and `kill -TERM` all stop the demo cleanly, even when it was started
    in the background by a shell that ignores SIGINT for background jobs (children would
    inherit that, so it is undone before any of them starts)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def demo(
    scenario: Annotated[str, typer.Option(
        help="District to run: 'grid' (generated 4x4 signalised grid, the default), a RESCO "
        "name (cologne1, grid4x4, ...) or a scenario folder.")] = DEFAULT_SCENARIO,
    speed: Annotated[float, typer.Option(min=0.1, max=100.0,
                                         help="Simulation speed factor (1 = real time).")] = 1.0,
    devices: Annotated[int, typer.Option(min=1, max=100_000,
                                         help="Number of simulated devices.")] = 40,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the hub and page; a "
                                      "free one is taken if busy.")] = 8000,
) -> None:
    """Run the demo: hub, MQTT broker, edge agent, device simulator, SUMO twin and the page.

    Data stays in the data dir (./.cityhub, or CITYHUB_DATA_DIR): a second run resumes from it.
    Stop with Ctrl-C.
    """
    settings = load_settings()
    configure_logging("warning")
    interruptible()
    if settings.auth == "disabled":
        console.print("[yellow]demo: authentication is off (CITYHUB_AUTH=disabled): every "
                      "visitor sees everything[/]")
    chosen = free_port(HOST, port)
    if chosen != port:
        console.print(f"port {port} is busy: using {chosen} instead")
    settings.public_url = settings.public_url or f"http://{HOST}:{chosen}"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    orchestrator = Orchestrator(console)
    identity = IdentityPart(settings, settings.data_dir / "demo")
    for component in components(settings, chosen, scenario, speed, devices, identity):
        orchestrator.add(component)
    try:  # Ctrl-C at any point, even while starting, stops what has started
        try:
            orchestrator.start_all()
        except StartError as error:
            raise fail(str(error)) from None
        console.print(orchestrator.table())
        if settings.auth == "enabled":
            console.print(identity.people())
        console.print(f"open [bold]http://{HOST}:{chosen}/[/] - Ctrl-C stops everything")
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping ...")
    finally:
        orchestrator.stop_all()
