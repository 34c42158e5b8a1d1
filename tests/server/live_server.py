"""Helpers for the server tests: start a REAL `kolite serve` (subprocess or in-process thread) on a free port.

No tests live here; the server test modules import these functions.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from support import free_port

STARTUP_TIMEOUT_S = 90.0


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes] | None = None

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, trust_env=False, **kwargs)

    def metrics(self) -> str:
        with self.client() as client:
            return client.get("/metrics").text


def wait_until_healthy(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx.Client(base_url=url, timeout=5.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}: {process.stderr.read().decode()}")
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"{url} not healthy within {STARTUP_TIMEOUT_S} s")


@contextmanager
def serve_subprocess(
    artifacts: list[Path], *options: str, env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """``python -m kolite.server`` in a child process; stopped with SIGTERM (graceful shutdown) at the end.

    Without a ``--drain-s`` among the options the server does not drain (tests that stop it would wait for nothing).
    """
    port = free_port()
    drain = () if "--drain-s" in options else ("--drain-s", "0")
    command = [sys.executable, "-m", "kolite.server", *map(str, artifacts), "--port", str(port),
               "--log-level", "warning", *drain, *options]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    server = RunningServer(f"http://127.0.0.1:{port}", process)
    try:
        wait_until_healthy(server.url, process)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@contextmanager
def serve_in_thread(app: Any, wait_healthy: bool = True) -> Iterator[RunningServer]:
    """uvicorn in a thread of this process (lets a test control model loading)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    running = RunningServer(f"http://127.0.0.1:{port}")
    try:
        if wait_healthy:
            wait_until_healthy(running.url)
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def post_concurrently(url: str, path: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """Send every body at once (one connection each) and return the responses in order."""

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(bodies))
        async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits, trust_env=False) as client:
            return list(await asyncio.gather(*(client.post(path, json=body) for body in bodies)))

    return asyncio.run(run())


def histogram(metrics_text: str, name: str, model: str) -> dict[str, float]:
    """``{le: cumulative count, 'count': n, 'sum': s}`` of one model's histogram in a Prometheus page."""
    values: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("#") or f'model="{model}"' not in line:
            continue
        key, _, value = line.rpartition(" ")
        if key.startswith(f"{name}_bucket"):
            values[key.split('le="')[1].split('"')[0]] = float(value)
        elif key.startswith(f"{name}_count"):
            values["count"] = float(value)
        elif key.startswith(f"{name}_sum"):
            values["sum"] = float(value)
    return values


def assert_error(response: httpx.Response, status: int, error_type: str | None = None) -> dict[str, Any]:
    """A clear JSON error in TEI's shape (plus the request id, also in the header) with the expected status."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "error_type", "request_id"}, body
    assert body["error"], body
    assert body["request_id"] == response.headers["x-request-id"], (body, response.headers)
    if error_type is not None:
        assert body["error_type"] == error_type, body
    return body
