"""The demo's child processes: started in their own session, logged to a file, restarted when
they end (the twin loops its district), stopped with SIGINT and reaped.

Ctrl-C in the terminal reaches only `cityhub demo` (children run in their own session), so the
orchestrator stops them one by one, in reverse start order, and each gets the same SIGINT a
user would send; one that does not end within `grace_s` is killed.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
RESTART_PAUSE_S = 1.0
EARLY_EXIT_S = 3.0  # a child that dies this soon after starting did not start


def cityhub_command(*args: str) -> list[str]:
    """`cityhub ARGS` with this interpreter (works from a venv without activating it)."""
    return [str(Path(sys.executable).parent / "cityhub"), *args]


def module_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


class ChildProcess:
    """One supervised process: `start()` returns its pid; `stop()` ends it and waits."""

    def __init__(self, name: str, command: list[str], log_path: Path, restart: bool = False,
                 grace_s: float = 10.0, on_exit: Callable[[str, int], None] | None = None,
                 ) -> None:
        self.name, self.command, self.log_path = name, command, log_path
        self.restart, self.grace_s, self.on_exit = restart, grace_s, on_exit
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._offset = 0  # where this run's output starts in the (appended) log
        self._lock = threading.Lock()  # a restart and a stop never cross

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                self.command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.runs += 1
        log.info("event=child_started name=%s pid=%d run=%d", self.name, process.pid, self.runs)
        return process

    def start(self) -> str:
        self.process = self._spawn()
        try:
            code = self.process.wait(timeout=EARLY_EXIT_S)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and not (self.restart and code == 0):
            tail = self.tail() or "no output"
            raise RuntimeError(f"exited with {code}: {tail}")
        self._watcher = threading.Thread(target=self._watch, name=f"watch-{self.name}",
                                         daemon=True)
        self._watcher.start()
        return f"pid {self.process.pid}, log {self.log_path}"

    def output(self) -> str:
        """What the current run has written so far."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self) -> str:
        lines = self.output().strip().splitlines()
        return lines[-1] if lines else ""

    def _watch(self) -> None:
        while not self._stopping.is_set():
            assert self.process is not None
            code = self.process.wait()
            if self._stopping.is_set():
                return
            if self.on_exit is not None:
                self.on_exit(self.name, code)
            if not self.restart or self._stopping.wait(RESTART_PAUSE_S):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self.process = self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=self.grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
        if self._watcher is not None:
            self._watcher.join(timeout=2)


def exit_with_parent() -> None:
    """In a child: interrupt this process (as Ctrl-C would) once its parent is gone, so a demo
    that was killed outright does not leave its workers running."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def wait_for(check: Callable[[], bool], timeout_s: float, what: str,
             child: ChildProcess | None = None) -> None:
    """Poll `check` until it holds; fail naming `what` (and the child's last log line)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if child is not None and child.process is not None and child.process.poll() is not None:
            raise RuntimeError(f"{what}: exited with {child.process.returncode}: {child.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {timeout_s:g} s")
        time.sleep(0.2)


def read_token(path: Path | None) -> str | None:
    """A bearer token handed to a child in a file (mode 600), never on its command line."""
    if path is None:
        return None
    token = path.read_text().strip()
    return token or None
