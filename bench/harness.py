"""What every benchmark script shares: a hub server started as a real subprocess, a fresh store
(SQLite file or PostgreSQL schema), CPU accounting, percentiles, and the rich/JSON output.

Benchmarks print figures and ratios measured in the same run; they never assert on time.
Scripts are run as `.venv/bin/python bench/<name>.py` (their folder is then on sys.path).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

OUT_DIR = Path(__file__).parent / "out"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
console = Console(width=None if sys.stdout.isatty() else 150)
log = logging.getLogger("bench")


def machine_note() -> str:
    """One line on where the figures come from; the load generator shares these cores."""
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, load average {load:.2f} at start; the load "
        "generator runs on the same cores as the server, and other work may share the machine"
    )


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of `values` (p in 0..100); nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- stores ------------------------------------------------------------------------------------


@dataclass
class StoreTarget:
    """Where one hub (or one in-process store) keeps its data in this run."""

    url: str
    data_dir: Path


@contextmanager
def fresh_store(kind: str, workdir: Path, name: str) -> Iterator[StoreTarget]:
    """A store nobody used yet: a SQLite file under `workdir`, or a PostgreSQL schema that is
    dropped at the end."""
    data_dir = workdir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        yield StoreTarget(f"sqlite:///{data_dir / 'cityhub.db'}", data_dir)
        return
    import psycopg

    schema = f"bench_{name}_{secrets.token_hex(4)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield StoreTarget(f"{PG_URL}?options=-csearch_path%3D{schema}", data_dir)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def workdir(path: str | None) -> Iterator[Path]:
    """The given folder (kept), or a temporary one removed at the end."""
    if path is not None:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix="cityhub-bench-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the hub as a subprocess ---------------------------------------------------------------------


@dataclass
class HubServer:
    """A `cityhub serve` subprocess on a free port; `url` is its base URL."""

    target: StoreTarget
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: int = 1  # `cityhub serve --workers`: hub processes sharing the port
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """CPU time of the hub and its worker processes (`--workers` > 1 forks them)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        total = process_cpu_seconds(self.pid)
        for child in children:
            with contextlib.suppress(FileNotFoundError):  # a worker that just exited
                total += process_cpu_seconds(int(child))
        return total

    def start(self, timeout: float = 60.0) -> None:
        env = {
            **os.environ,
            "CITYHUB_STORE_URL": self.target.url,
            "CITYHUB_DATA_DIR": str(self.target.data_dir),
            "CITYHUB_AUTH": "disabled",  # loopback benchmarks; a configuration may turn it on
            **self.extra_env,
        }
        log_file = (self.target.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-c", "from cityhub.cli import app; app()", "serve",
             "--port", str(self.port), "--log-level", "warning", "--workers", str(self.workers)],
            env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited early; see {self.target.data_dir}/server.log")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the hub did not answer /health within {timeout} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> HubServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@dataclass
class CpuMeter:
    """Server and client CPU use over one measured phase (as a share of one core)."""

    server: HubServer | None
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    _t0: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __enter__(self) -> CpuMeter:
        self._t0 = (time.perf_counter(), self._server_now(), _own_cpu())
        return self

    def __exit__(self, *_exc: object) -> None:
        self.wall = time.perf_counter() - self._t0[0]
        self.server_cpu = (self._server_now() - self._t0[1]) / self.wall
        self.client_cpu = (_own_cpu() - self._t0[2]) / self.wall

    def _server_now(self) -> float:
        return self.server.cpu_seconds() if self.server is not None else 0.0


def _own_cpu() -> float:
    """CPU of this process and of its finished children (wrk runs as a child)."""
    me = os.times()
    return me.user + me.system + me.children_user + me.children_system


# -- output ------------------------------------------------------------------------------------


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for at, name in enumerate(columns):
        table.add_column(name, justify="left" if at == 0 else "right")
    for row in rows:
        table.add_row(*(fmt(v) for v in row))
    console.print(table)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _finite(value: Any) -> Any:
    """NaN and infinities as null: the files stay strict JSON."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def save_results(script: str, args: Any, figures: dict[str, Any]) -> Path:
    """Write the figures as JSON in bench/out/ and return the path."""
    OUT_DIR.mkdir(exist_ok=True)
    suffix = "-quick" if getattr(args, "quick", False) else ""
    store = getattr(args, "store", "sqlite")
    path = OUT_DIR / f"{script}-{store}{suffix}.json"
    document = {
        "script": script,
        "command": " ".join([".venv/bin/python", Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_note(),
        "options": {k: v for k, v in vars(args).items() if isinstance(v, str | int | float | bool)},
        "figures": figures,
    }
    path.write_text(json.dumps(_finite(document), indent=2))
    console.print(f"figures written to {path}")
    return path
