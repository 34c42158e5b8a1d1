"""Runs the app under uvicorn: guarded connections, request ids in log lines, and a drain period on SIGTERM.

SIGTERM (what Kubernetes and ``docker stop`` send) first drains: /health answers 503 so load balancers take the
replica out of rotation, while requests, new ones included, are still served, with ``Connection: close`` so that
keep-alive clients reconnect elsewhere. After ``drain_s`` uvicorn's graceful shutdown runs: stop listening, finish
in-flight requests (``timeout_graceful_shutdown``), then the app's shutdown drains the batchers. A second SIGTERM,
or SIGINT (Ctrl-C), skips the drain.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn

from kolite.server.connections import guarded_protocol
from kolite.server.middleware import RequestIdFilter

__all__ = ["DrainingServer", "RunOptions", "build_server", "configure_logging"]

_READ_SLACK_BYTES = 4 * 2**20  # well above one read of the event loop (asyncio and uvloop: 256 KiB)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


@dataclass(frozen=True)
class RunOptions:
    host: str
    port: int
    log_level: str = "info"
    graceful_timeout_s: float = 30.0
    drain_s: float = 5.0
    http: str = "auto"  # uvicorn's HTTP parser: auto (httptools when installed), h11, httptools
    loop: str = "auto"  # uvicorn's event loop: auto (uvloop when installed), asyncio, uvloop


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain period before the graceful shutdown (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, drain_s: float, on_drain: Any) -> None:
        super().__init__(config)
        self.drain_s = drain_s
        self.on_drain = on_drain
        self.drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self.drain_s > 0 and self.drain_until is None and not self.should_exit:
            self._captured_signals.append(sig)  # uvicorn re-raises it once shut down (the exit status says SIGTERM)
            self.drain_until = time.monotonic() + self.drain_s
            self.on_drain()
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_until is not None and time.monotonic() >= self.drain_until:
            self.should_exit = True
        return await super().on_tick(counter)


def configure_logging(level: str) -> None:
    """One format for kolite's and uvicorn's lines, each with the request id it belongs to (``-`` outside)."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())


def ensure_file_limit(max_connections: int, spare: int = 128) -> None:
    """Raise the soft limit on open files so ``max_connections`` sockets fit (up to the hard limit); warn if they
    cannot, since accept() would then fail before the connection cap answers 503."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + spare
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
        if soft < needed:
            logging.getLogger("kolite.server").warning(
                "open-file limit %d is below --max-connections %d + %d: raise `ulimit -n` or lower --max-connections",
                soft, max_connections, spare)


def _http_protocol(name: str) -> type:
    """uvicorn's HTTP/1.1 protocol class for ``name``; ``auto`` prefers httptools, as uvicorn does."""
    if name in ("auto", "httptools"):
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

            return HttpToolsProtocol
        except ImportError:
            if name == "httptools":
                raise
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


def build_server(app: Any, options: RunOptions) -> DrainingServer:
    """The uvicorn server for ``app`` (built by ``create_app``); ``server.run()`` serves until shut down."""
    state = app.state.kolite
    limits = state.config.limits
    ensure_file_limit(limits.max_connections)
    protocol = guarded_protocol(_http_protocol(options.http), limits, state.metrics)
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        http=protocol,
        loop=options.loop,
        log_level=options.log_level,
        log_config=None,  # configure_logging's format, request ids included
        access_log=options.log_level == "debug",  # one log line per request costs throughput
        timeout_graceful_shutdown=options.graceful_timeout_s,
        # h11 refuses (400) a buffer over this; the guard's 431 at --max-header-bytes must come first. The guard
        # checks after every read, so h11 never buffers more than the cap plus one read.
        h11_max_incomplete_event_size=limits.max_header_bytes + _READ_SLACK_BYTES,
        backlog=2048,
    )
    return DrainingServer(config, options.drain_s, state.begin_drain)
