"""Starting and stopping the demo's components in order, with progress and a clear listing.

A `Component` has a name, a `start()` that returns where it runs (a URL, a port, a count) and a
`stop()`. The `Orchestrator` starts them in registration order under a rich progress display,
prints what started where, and stops them in reverse order (each stop is attempted even if an
earlier one fails). A component that cannot start stops the whole run: everything already
started is stopped again and the error is raised as `StartError` naming the component.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

log = logging.getLogger(__name__)


class StartError(RuntimeError):
    """A component did not start; the message names it and says why."""


@dataclass
class Component:
    """One part of the demo: `start` returns where it runs; `stop` ends it."""

    name: str
    start: Callable[[], str]
    stop: Callable[[], None] = lambda: None
    what: str = ""


@dataclass
class Started:
    name: str
    where: str
    what: str
    seconds: float


@dataclass
class Orchestrator:
    console: Console
    components: list[Component] = field(default_factory=list)
    started: list[tuple[Component, Started]] = field(default_factory=list)

    def add(self, component: Component) -> None:
        if any(c.name == component.name for c in self.components):
            raise ValueError(f"component {component.name!r} is registered twice")
        self.components.append(component)

    def start_all(self) -> list[Started]:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            for component in self.components:
                task = progress.add_task(f"starting {component.name}", total=None)
                begun = time.monotonic()
                try:
                    where = component.start()
                except Exception as error:
                    progress.stop()
                    self.stop_all()
                    reason = str(error).strip().splitlines()[0] if str(error).strip() else \
                        type(error).__name__
                    raise StartError(f"{component.name} did not start: {reason}") from error
                done = Started(component.name, where, component.what,
                               round(time.monotonic() - begun, 1))
                self.started.append((component, done))
                progress.remove_task(task)
                self.console.print(f"[green]✓[/] {component.name}: {where} "
                                   f"[dim]({done.seconds} s)[/]")
                log.info("event=component_started name=%s where=%s", component.name, where)
        return [s for _, s in self.started]

    def table(self) -> Table:
        table = Table(title="cityhub demo", show_lines=False)
        table.add_column("component")
        table.add_column("where")
        table.add_column("what")
        for _, done in self.started:
            table.add_row(done.name, done.where, done.what)
        return table

    def stop_all(self) -> None:
        while self.started:
            component, _ = self.started.pop()
            begun = time.monotonic()
            try:
                component.stop()
                self.console.print(f"[dim]stopped {component.name} "
                                   f"({time.monotonic() - begun:.1f} s)[/]")
            except Exception as error:  # keep stopping the others; say what failed
                self.console.print(f"[yellow]stopping {component.name} failed:[/] {error}")
                log.warning("event=component_stop_failed name=%s error=%s", component.name, error)
