"""`cityhub serve --workers N`: N hub processes, each with a listening socket of its own on the
one port (SO_REUSEPORT), so that the kernel spreads new connections over them.

uvicorn's own `--workers` shares one socket, and a worker that wakes first accepts every
connection waiting (asyncio and libuv accept in a loop): keep-alive clients that connect at
once then all land on one process (seen: 16 wrk connections on one worker, the other idle,
in one run of three). Hub processes share nothing but the store and the bus, so any worker
can take any connection. A worker that dies is started again, unless workers keep dying soon
after their start; SIGINT or SIGTERM stops all of them gracefully.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)
RESTART_PAUSE_S = 1.0
EARLY_DEATH_S = 120.0  # a worker that dies this soon after its start did not get going
EARLY_DEATHS_MAX = 3  # in a row: then the supervisor gives up


def check_port_free(host: str, port: int) -> None:
    """Raise OSError if anything listens on host:port already: a worker's SO_REUSEPORT
    socket would otherwise join another hub's group (of the same user) without a word."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: connections of a hub that just stopped (TIME_WAIT) do not count; on
        # Linux a socket that listens on the port still does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def serve_worker(host: str, port: int, log_level: str, grace_s: int) -> None:
    """One worker process: its own socket, its own app built from the environment."""
    import uvicorn

    from cityhub.cli.common import configure_logging

    configure_logging(log_level)
    config = uvicorn.Config("cityhub.api.app:create_app", factory=True,
                            log_level=log_level.lower(), access_log=False,
                            timeout_graceful_shutdown=grace_s)
    uvicorn.Server(config).run(sockets=[_listen(host, port)])


def supervise(host: str, port: int, log_level: str, workers: int, grace_s: int) -> bool:
    """Run `workers` worker processes until SIGINT or SIGTERM; restart any that dies. False
    when workers kept dying soon after their start (a broken set-up: restarting cannot help),
    after stopping the others."""
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(target=serve_worker, args=(host, port, log_level, grace_s),
                                  name="cityhub-worker")
        process.start()
        return process, time.monotonic()

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    running = [start() for _ in range(workers)]
    early_deaths = 0
    try:
        while not stopping.wait(0.5):
            for n, (process, started) in enumerate(running):
                if process.is_alive():
                    continue
                log.warning("event=worker_died pid=%s exitcode=%s; starting another",
                            process.pid, process.exitcode)
                early = time.monotonic() - started < EARLY_DEATH_S
                early_deaths = early_deaths + 1 if early else 0
                if early_deaths >= EARLY_DEATHS_MAX:
                    return False
                if stopping.wait(RESTART_PAUSE_S):
                    break
                running[n] = start()
        return True
    finally:
        for process, _ in running:
            process.terminate()  # SIGTERM: uvicorn finishes what is under way, then exits
        for process, _ in running:
            process.join(grace_s + 10)
            if process.is_alive():
                process.kill()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
