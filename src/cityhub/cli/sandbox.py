"""`cityhub sandbox ...`: run, generate and benchmark SUMO scenarios; publish the twin into the
hub; record and approve controller versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cityhub.cli.common import console, fail, load_settings
from cityhub.sandbox.registry import AlgorithmRegistry, RegistryError

app = typer.Typer(help="The SUMO twin: scenarios, signal controllers, benchmark, publishing.",
                  no_args_is_help=True)
generate_app = typer.Typer(help="Generate a district scenario with SUMO's own tools.",
                           no_args_is_help=True)
registry_app = typer.Typer(help="The algorithm registry: controller versions and approvals.",
                           no_args_is_help=True)
app.add_typer(generate_app, name="generate")
app.add_typer(registry_app, name="registry")

ScenarioOpt = Annotated[str, typer.Option("--scenario", help="RESCO name, folder or .sumocfg.")]
SumoHomeOpt = Annotated[Path | None, typer.Option(
    "--sumo-home", help="Another SUMO install (driven over TraCI), e.g. 1.9.2 for RESCO.")]
AllRedOpt = Annotated[float | None, typer.Option(
    "--all-red", min=0, help="All-red seconds after each yellow (default: the network's own).")]


def _parse_size(size: str) -> tuple[int, int]:
    try:
        cols, rows = (int(part) for part in size.lower().split("x"))
    except ValueError:
        raise fail(f"--size must look like 4x4, not {size!r}") from None
    return cols, rows


@app.command("run")
def run_command(
    scenario: ScenarioOpt,
    controller: Annotated[str, typer.Option(help="Registered controller name.")] = "cityhub",
    seed: Annotated[int, typer.Option(help="SUMO random seed.")] = 1,
    seconds: Annotated[float | None, typer.Option(min=1, help="Simulate only this long.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for metrics.json, CSV, plot.")] = Path(
        "sandbox-out"),
    sumo_home: SumoHomeOpt = None,
    hub: Annotated[str | None, typer.Option(help="Publish the twin into this NGSI-LD hub.")] = None,
    district: Annotated[str, typer.Option(help="District part of published entity ids.")] = "demo",
    all_red: AllRedOpt = None,
) -> None:
    """Run one scenario with one controller and write DIR/metrics.json, CSV and PNG."""
    from rich.progress import Progress

    from cityhub.brain.controllers import create_controller
    from cityhub.sandbox.publisher import PublishError
    from cityhub.sandbox.runner import RunSpec, run
    from cityhub.sandbox.scenarios import ScenarioError

    settings = load_settings()
    try:
        create_controller(controller)
    except ValueError as error:
        raise fail(str(error)) from None
    spec = RunSpec(scenario, controller, seed, seconds, out, sumo_home, settings.scenario_dir,
                   loops=hub is not None, all_red_s=all_red)
    observer = None
    if hub is not None:
        from cityhub.sandbox.publisher import HubPublisher

        observer = HubPublisher(hub, district).observe
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"{scenario} / {controller}", total=1.0)
            metrics = run(spec, lambda done, total: bar.update(task, completed=done / total),
                          observer)
    except (ScenarioError, FileNotFoundError, PublishError) as error:
        raise fail(str(error)) from None
    except Exception as error:  # SUMO reports bad inputs as its own exception types
        raise fail(f"simulation failed: {str(error).strip() or type(error).__name__}") from None
    shown = {k: metrics[k] for k in ("avg_delay_s", "avg_trip_time_s", "avg_wait_s",
                                     "avg_queue_veh", "throughput_veh", "unfinished_veh",
                                     "wall_s", "control_overhead", "sumo_version")}
    typer.echo(json.dumps(shown))
    console.print(f"wrote {out / 'metrics.json'}, {out / 'timeseries.csv'}, {out / 'plot.png'}")


@generate_app.command("grid")
def generate_grid(
    size: Annotated[str, typer.Option(help="COLUMNSxROWS of signalised junctions.")] = "4x4",
    demand: Annotated[float, typer.Option(min=1, help="Vehicles per hour.")] = 1200.0,
    seconds: Annotated[float, typer.Option(min=60, help="Demand horizon.")] = 3600.0,
    lanes: Annotated[int, typer.Option(min=1, max=4, help="Lanes per direction.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the random trips.")] = 42,
    out: Annotated[Path, typer.Option(help="Folder to write the scenario into.")] = Path(
        "scenarios/grid"),
) -> None:
    """Generate a signalised grid district (netgenerate + randomTrips)."""
    from cityhub.sandbox.generate import Demand, GenerateError, grid

    cols, rows = _parse_size(size)
    try:
        scenario = grid(out, cols, rows, Demand(demand, seconds, seed), lanes=lanes)
    except GenerateError as error:
        raise fail(str(error)) from None
    console.print(f"wrote {scenario.config}")


@generate_app.command("arterial")
def generate_arterial(
    junctions: Annotated[int, typer.Option(min=2, help="Signalised crossings.")] = 5,
    demand: Annotated[float, typer.Option(min=1, help="Vehicles per hour.")] = 1200.0,
    seconds: Annotated[float, typer.Option(min=60, help="Demand horizon.")] = 3600.0,
    lanes: Annotated[int, typer.Option(min=1, max=4, help="Lanes per direction.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the random trips.")] = 42,
    out: Annotated[Path, typer.Option(help="Folder to write the scenario into.")] = Path(
        "scenarios/arterial"),
) -> None:
    """Generate a signalised arterial with side streets."""
    from cityhub.sandbox.generate import Demand, GenerateError, arterial

    try:
        scenario = arterial(out, junctions, Demand(demand, seconds, seed), lanes=lanes)
    except GenerateError as error:
        raise fail(str(error)) from None
    console.print(f"wrote {scenario.config}")


@app.command("bench")
def bench_command(
    scenarios: Annotated[str, typer.Option(help="Comma-separated names or paths.")],
    controllers: Annotated[str, typer.Option(help="Comma-separated controller names.")] = (
        "fixed,actuated,greedy,max-pressure,cityhub"),
    seeds: Annotated[int, typer.Option(min=1, help="Seeds 1..N per combination.")] = 3,
    seconds: Annotated[float | None, typer.Option(min=1, help="Simulate only this long.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Parallel processes.")] = 2,
    out: Annotated[Path, typer.Option(help="Folder for every run and bench.json.")] = Path(
        "bench/out/sandbox"),
    sumo_home: SumoHomeOpt = None,
    all_red: AllRedOpt = None,
) -> None:
    """Run the scenario x controller x seed matrix in parallel processes; print the table."""
    from rich.progress import Progress

    from cityhub.brain.controllers import create_controller
    from cityhub.sandbox.bench import markdown, run_matrix, summary

    settings = load_settings()
    names = [c.strip() for c in controllers.split(",") if c.strip()]
    places = [s.strip() for s in scenarios.split(",") if s.strip()]
    try:
        for name in names:
            create_controller(name)
    except ValueError as error:
        raise fail(str(error)) from None
    total = len(names) * len(places) * seeds
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("bench", total=total)
        try:
            results = run_matrix(places, names, seeds, out, workers, seconds, sumo_home,
                                 settings.scenario_dir, lambda _r: bar.advance(task), all_red)
        except Exception as error:  # a failed worker: show its reason in one line
            raise fail(f"bench run failed: {str(error).strip() or type(error).__name__}") from None
    rows = summary(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps({"runs": results, "rows": rows}, indent=1))
    typer.echo(markdown(rows))


def _registry() -> AlgorithmRegistry:
    settings = load_settings()
    return AlgorithmRegistry(settings.algorithm_registry
                             or settings.data_dir / "algorithms.json")


@registry_app.command("record")
def registry_record(
    controller: Annotated[str, typer.Option(help="Registered controller name.")],
    bench: Annotated[Path | None, typer.Option(help="bench.json of `cityhub sandbox bench`.")] = (
        None),
    by: Annotated[str, typer.Option(help="Who records it.")] = "unknown",
) -> None:
    """Record a controller version with its configuration and bench results."""
    from cityhub.brain.controllers import create_controller

    try:
        instance = create_controller(controller)
    except ValueError as error:
        raise fail(str(error)) from None
    rows: list[dict[str, object]] = []
    if bench is not None:
        try:
            rows = [r for r in json.loads(bench.read_text())["rows"]
                    if r["controller"] == controller]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise fail(f"cannot read bench results from {bench}: {error}") from None
    entry = _registry().record(instance, rows, by)
    typer.echo(entry["identity"])


@registry_app.command("approve")
def registry_approve(
    identity: Annotated[str, typer.Argument(help="name@version#hash from `registry list`.")],
    by: Annotated[str, typer.Option(help="Approver's name.")],
    note: Annotated[str, typer.Option(help="Reason or conditions.")] = "",
) -> None:
    """Approve a recorded controller version (it needs bench results)."""
    try:
        _registry().approve(identity, by, note)
    except RegistryError as error:
        raise fail(str(error)) from None
    console.print(f"approved {identity} by {by}")


@registry_app.command("list")
def registry_list() -> None:
    """List recorded controller versions and who approved them."""
    for entry in _registry().versions():
        approvers = ", ".join(a["by"] for a in entry["approvals"]) or "NOT APPROVED"
        typer.echo(f"{entry['identity']}  bench rows: {len(entry['bench'])}  "
                   f"approved by: {approvers}")


@app.command("control")
def control_command(
    hub: Annotated[str, typer.Option(help="NGSI-LD hub base URL.")],
    net: Annotated[Path, typer.Option(help="The district's SUMO .net.xml (junction layout).")],
    controller: Annotated[str, typer.Option(help="Registered controller name.")] = "cityhub",
    district: Annotated[str, typer.Option(help="District part of entity ids.")] = "demo",
    seconds: Annotated[int, typer.Option(min=1, help="How long to run (wall seconds).")] = 3600,
) -> None:
    """Live loop: TrafficFlowObserved in, TrafficSignal commands out (approved versions only)."""
    import time
    from datetime import UTC, datetime

    import httpx

    from cityhub.brain.controllers import create_controller
    from cityhub.sandbox.live import LiveSignalLoop

    try:
        loop = LiveSignalLoop(hub, district, net, create_controller(controller), _registry())
    except (ValueError, OSError) as error:
        raise fail(str(error)) from None
    start = time.monotonic()
    try:
        while (now := time.monotonic() - start) < seconds:
            loop.step(now, datetime.now(UTC))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - start - now)))
    except httpx.HTTPError as error:
        raise fail(f"hub error: {error}") from None
    finally:
        loop.close()
