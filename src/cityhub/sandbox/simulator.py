"""The simulator port: libsumo for the shipped SUMO, TraCI for another install (`--sumo-home`).

Both expose the same TraCI API, so the twin holds one module object `api`. libsumo allows one
simulation per process and is not reproducible across restarts in one process: one run, one
process (the bench spawns a fresh process per run).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Simulator:
    """A started simulation: `api` is the libsumo or traci module, `version` SUMO's own."""

    api: Any
    version: str
    backend: str

    @property
    def lane_results(self) -> Callable[[str], Mapping[int, Any]]:
        """One lane's subscription results. Over TraCI, the client already holds them (they
        came with the step)."""
        return self.native("lane_getSubscriptionResults", self.api.lane.getSubscriptionResults)

    def native(self, name: str, fallback: Callable[..., Any]) -> Callable[..., Any]:
        """libsumo's module-level function `name` (e.g. `lane_getSubscriptionResults`), which
        skips the Python wrapper around it (a third of a call's cost, paid hundreds of times a
        decision); `fallback` (the API's method) over TraCI."""
        module = getattr(self.api, "_libsumo", None)
        return getattr(module, name) if module is not None else fallback

    def close(self) -> None:
        self.api.close()


def start(args: list[str], sumo_home: Path | None = None) -> Simulator:
    """Start SUMO with command-line `args` (without the binary)."""
    if sumo_home is None:
        import libsumo

        libsumo.start(["sumo", *args])
        return Simulator(libsumo, _version(libsumo), "libsumo")
    binary = sumo_home / "bin" / "sumo"
    if not binary.exists():
        raise FileNotFoundError(f"no SUMO binary at {binary}")
    os.environ["SUMO_HOME"] = str(sumo_home)  # its tools and XML schemas, not the pip install's
    tools = str(sumo_home / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    for name in [m for m in sys.modules if m == "traci" or m.startswith("traci.")]:
        del sys.modules[name]
    import traci

    # TraCI prints connection retries and SUMO's banner to stdout: keep the bench table clean.
    with contextlib.redirect_stdout(io.StringIO()):
        traci.start([str(binary), *args], stdout=subprocess.DEVNULL)
    return Simulator(traci, _version(traci), "traci")


def _version(api: Any) -> str:
    text = str(api.getVersion()[1])
    return text.replace("SUMO ", "").strip()
