"""Closed-loop HTTP load: C clients, each on its own keep-alive connection, send the next
request as soon as the last one is answered, for a fixed time. Two generators drive the same
`Endpoint`: httpx on asyncio (in this process) and `wrk` (C, with a generated Lua script),
because a Python client may use more CPU per request than the server it measures.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness import percentile

GENERATORS = ("httpx", "wrk")


@dataclass(frozen=True)
class Endpoint:
    """One kind of request. Request n uses paths[n % len(paths)] and, for writes,
    body_format % n (a `%d` placeholder, so that every write carries a new value)."""

    name: str
    method: str
    paths: list[str]
    body_format: str | None = None
    ok: frozenset[int] = frozenset({200, 204})


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    first_error: str = ""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")

    def summary(self) -> dict[str, float | int | str]:
        return {"requests": self.requests, "errors": self.errors, "seconds": self.seconds,
                "per_second": self.per_second, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "first_error": self.first_error}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def pick_generator(choice: str) -> list[str]:
    if choice == "auto":
        return ["wrk"] if wrk_available() else ["httpx"]
    if choice == "both":
        return list(GENERATORS)
    return [choice]


def run_load(generator: str, base_url: str, endpoint: Endpoint, *, clients: int,
             seconds: float, start: int = 0) -> LoadResult:
    if generator == "wrk":
        return run_wrk(base_url, endpoint, clients=clients, seconds=seconds, start=start)
    return asyncio.run(run_httpx(base_url, endpoint, clients=clients, seconds=seconds,
                                 start=start))


async def run_httpx(base_url: str, endpoint: Endpoint, *, clients: int, seconds: float,
                    start: int = 0) -> LoadResult:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Accept": "application/json"}
    if endpoint.body_format:
        headers["Content-Type"] = "application/json"
    latencies: list[float] = []
    errors: list[str] = []
    counter = start
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60.0,
                                 headers=headers) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal counter
            while time.perf_counter() < deadline:
                counter += 1
                n = counter
                path = endpoint.paths[n % len(endpoint.paths)]
                body = endpoint.body_format % n if endpoint.body_format else None
                sent = time.perf_counter()
                response = await client.request(endpoint.method, path, content=body)
                latencies.append((time.perf_counter() - sent) * 1000)
                if response.status_code not in endpoint.ok:
                    errors.append(f"{response.status_code} {response.text[:200]}")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    return LoadResult(len(latencies), len(errors), elapsed, latencies,
                      percentile(latencies, 50), percentile(latencies, 99),
                      errors[0] if errors else "")


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def wrk_script(endpoint: Endpoint, start: int) -> str:
    paths = ",\n".join(_lua_string(p) for p in endpoint.paths)
    body = _lua_string(endpoint.body_format) if endpoint.body_format else "nil"
    return f"""
local paths = {{
{paths}
}}
local body_format = {body}
local counter = {start}
wrk.method = "{endpoint.method}"
wrk.headers["Accept"] = "application/json"
if body_format then wrk.headers["Content-Type"] = "application/json" end
request = function()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  if body_format then
    return wrk.format("{endpoint.method}", path, nil, string.format(body_format, counter))
  end
  return wrk.format("{endpoint.method}", path)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests": %d, "duration_us": %d, "status": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(base_url: str, endpoint: Endpoint, *, clients: int, seconds: float,
            start: int = 0) -> LoadResult:
    """One wrk thread (the server needs the other core); wrk counts HTTP >= 400 as errors."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(endpoint, start))
    try:
        done = subprocess.run(  # noqa: S603 - wrk with our own arguments
            [wrk, "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
             "-s", script.name, base_url],
            capture_output=True, text=True, check=True,
        )
    finally:
        Path(script.name).unlink()
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    kinds = ("status", "connect", "read", "write", "timeout")
    errors = sum(int(data[k]) for k in kinds)
    detail = ", ".join(f"{k} {data[k]}" for k in kinds if data[k])
    return LoadResult(int(data["requests"]), errors, data["duration_us"] / 1e6, [],
                      data["p50_us"] / 1000, data["p99_us"] / 1000,
                      f"wrk errors: {detail}" if errors else "")
