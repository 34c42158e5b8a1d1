"""``kolite serve --processes N``: N server processes on one port, each with its own event loop and model.

Why: one process answers a burst of requests in lock step. With 64 one-text clients every gathered batch holds all
64 requests; while the model runs on both cores the event loop has nothing to do, and while the loop answers 64
requests and parses the next 64 (~0.19 ms each, all under one GIL) the second core idles — ~17 % of the machine
(benchmarks guide, "Serving in lock step"). Two processes have two event loops and two GILs: one's loop works while
the other's model runs.

How: the parent spawns N children (``multiprocessing`` spawn, so nothing of the parent's state is shared); each
runs the ordinary server on its own listening socket bound to the same host and port with ``SO_REUSEPORT``, and
the kernel spreads new connections over them. Each child gets the CPU budget ÷ N onnxruntime threads. The parent
forwards SIGTERM/SIGINT to every child (each drains and shuts down as one server does) and, when one child exits
on its own, stops the others: a failed model or a crash takes the whole service down, never half of it.

Each child answers /health and /metrics for itself: a probe or a scrape through the shared port reaches one of
them (see the serving guide).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import signal
import socket
import sys
from multiprocessing.connection import wait
from typing import Any

__all__ = ["reuse_port_socket", "serve_processes"]

_STOP_TIMEOUT_S = 90.0  # beyond every child's own drain and graceful shutdown


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port that other processes may bind too (``SO_REUSEPORT``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _child(args: argparse.Namespace) -> None:
    from kolite.server.cli import serve

    sys.exit(serve(args))


def serve_processes(args: argparse.Namespace) -> int:
    """Run ``args.processes`` servers on one port until SIGTERM/SIGINT or until one of them exits; the exit status
    is the first child's to exit on its own (0 after a signal)."""
    from kolite.cpu_budget import cpu_budget

    if not hasattr(socket, "SO_REUSEPORT"):
        print("kolite serve: --processes needs SO_REUSEPORT (Linux, macOS)", file=sys.stderr)
        return 2
    if args.port == 0:
        print("kolite serve: --processes needs a fixed --port (port 0 would give each process its own)",
              file=sys.stderr)
        return 2
    threads = max(1, (args.threads or cpu_budget().threads) // args.processes)
    context = multiprocessing.get_context("spawn")
    children = []
    for index in range(args.processes):
        child_args = argparse.Namespace(**{**vars(args), "processes": 1, "threads": threads, "reuse_port": True})
        children.append(context.Process(target=_child, args=(child_args,), name=f"kolite-serve-{index}"))
    signalled = False

    def stop_all() -> None:
        for child in children:
            if child.is_alive():
                with contextlib.suppress(OSError):
                    child.terminate()  # SIGTERM: the child drains, then shuts down gracefully

    def on_signal(_signum: int, _frame: Any) -> None:
        nonlocal signalled
        signalled = True
        stop_all()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.start()
        ready = wait([child.sentinel for child in children])[0]
        first = next(child for child in children if child.sentinel == ready)
        first.join()  # its pipe closes a moment before it can be reaped: exitcode would still read None
        code = first.exitcode
        stop_all()
        for child in children:
            child.join(_STOP_TIMEOUT_S)
            if child.is_alive():
                child.kill()
                child.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code is None or (signalled and code < 0):
        return 0
    return code if code >= 0 else 128 - code  # killed by a signal nobody sent through the parent: 128 + its number
