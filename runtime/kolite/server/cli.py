"""``kolite serve``: argparse wiring and the uvicorn server (graceful shutdown on SIGINT/SIGTERM)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from kolite.cli import THREADS_HELP, DefaultsHelpFormatter, add_guard_option
from kolite.errors import KoliteError

__all__ = ["build_config", "main", "register", "serve"]

_MISSING_DEPS = "kolite serve needs the server extra: pip install 'kolite[serve]'"
API_KEY_ENV = "KOLITE_API_KEY"
MEMORY_PROFILE_ENV = "KOLITE_MEMORY_PROFILE"


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to the kolite CLI."""
    parser = subparsers.add_parser(
        "serve",
        help="serve artifacts over HTTP (TEI-compatible /predict, /tag, /metrics, dynamic batching)",
        description="Serve one or more kolite artifacts over HTTP. Binds 127.0.0.1 unless --host is given.",
    )
    add_arguments(parser)
    parser.set_defaults(func=serve)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kolite.server.config import BatchingConfig, Limits

    b, lim = BatchingConfig(), Limits()
    parser.add_argument("artifacts", nargs="+", type=Path, metavar="ARTIFACT",
                        help="artifact folders; each model is named after its folder as given (a symlink keeps its "
                             "own name)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; 0.0.0.0 in "
                                                            "containers)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port to listen on")
    parser.add_argument("--variant", default="auto", help="variant to load for every model (default auto)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"onnxruntime intra-op threads per model ({THREADS_HELP})")
    parser.add_argument("--processes", type=int, default=1,
                        help="server processes on the one port (SO_REUSEPORT), each with its own event loop, models "
                             "and threads ÷ N; each answers /health and /metrics for itself (see the serving guide)")
    add_guard_option(parser)
    parser.add_argument("--memory-profile", default=os.environ.get(MEMORY_PROFILE_ENV, "default"),
                        choices=("default", "edge"),
                        help="default: fastest (throughput-mode sessions, onnxruntime arena, full warm-up); edge: "
                             "least memory (one session, no arena, short warm-up; ~140 MB for a small model). "
                             f"Default from ${MEMORY_PROFILE_ENV}")
    parser.add_argument("--tokenizer-workers", type=int, default=None,
                        help="threads that tokenize requests and build responses off the event loop; requests "
                             "of at most 1,024 characters are handled on the loop (default: min(4, the CPU budget))")
    parser.add_argument("--exit-on-error", action=argparse.BooleanOptionalAction, default=True,
                        help="a model that cannot load stops the server, every failing model's reason printed, exit "
                             "2 (default); --no-exit-on-error serves the models that load, shows the failed ones in "
                             "/models, and /health answers 503")
    group = parser.add_argument_group("dynamic batching")
    group.add_argument("--max-batch-tokens", type=int, default=b.max_batch_tokens,
                       help="padded tokens (items x longest) per inference batch")
    group.add_argument("--max-batch-items", type=int, default=b.max_batch_items, help="texts per inference batch")
    group.add_argument("--max-call-tokens", type=int, default=b.max_call_tokens,
                       help="padded tokens per onnxruntime call (a batch runs as length-sorted calls)")
    group.add_argument("--max-wait-ms", type=float, default=b.max_wait_ms,
                       help="how long the oldest request waits for more to batch with")
    group.add_argument("--max-queue", type=int, default=b.max_queue,
                       help="requests per model queued or running before new ones get 429")
    group.add_argument("--max-queue-tokens", type=int, default=b.max_queue_tokens,
                       help="tokens of the requests queued or running per model before new ones get 429 (a "
                            "request alone in the queue always runs)")
    group.add_argument("--no-batching", action="store_true", help="run every request alone (baseline)")
    group = parser.add_argument_group("request limits")
    group.add_argument("--max-body-bytes", type=int, default=lim.max_body_bytes, help="larger bodies get 413")
    group.add_argument("--max-items", type=int, default=lim.max_items, help="more texts per request get 413")
    group.add_argument("--max-text-chars", type=int, default=lim.max_text_chars,
                       help="longer texts are cut (truncate=true, default) or refused with 413")
    group.add_argument("--truncate", action=argparse.BooleanOptionalAction, default=True,
                       help="whether texts of a request that does not set `truncate` are cut at --max-text-chars")
    group.add_argument("--timeout-s", type=float, default=lim.timeout_s, help="per-request timeout (504)")
    group = parser.add_argument_group("connections and shutdown")
    group.add_argument("--header-timeout-s", type=float, default=lim.header_timeout_s,
                       help="a connection's request headers must arrive within this (else 408 and closed)")
    group.add_argument("--body-timeout-s", type=float, default=lim.body_timeout_s,
                       help="a request's body must arrive within this after its headers (else 408 and closed)")
    group.add_argument("--max-connections", type=int, default=lim.max_connections,
                       help="open connections; more are answered 503 and closed")
    group.add_argument("--max-header-bytes", type=int, default=lim.max_header_bytes,
                       help="a request's headers, request line included (default %(default)s; more: 431 and the "
                            "connection closed)")
    group.add_argument("--drain-s", type=float, default=5.0,
                       help="on SIGTERM, how long /health answers 503 while requests are still served, before "
                            "the graceful shutdown (0: none)")
    group.add_argument("--graceful-timeout-s", type=float, default=30.0,
                       help="then, how long in-flight requests may take to finish")
    group.add_argument("--http", default="auto", choices=("auto", "h11", "httptools"),
                       help="uvicorn's HTTP parser (auto: httptools when installed)")
    group.add_argument("--loop", default="auto", choices=("auto", "asyncio", "uvloop"),
                       help="uvicorn's event loop (auto: uvloop when installed)")
    group = parser.add_argument_group("security and tracing")
    group.add_argument("--api-key", default=None,
                       help=f"require `Authorization: Bearer KEY` (better: set ${API_KEY_ENV}, which `ps` does not "
                            "show)")
    group.add_argument("--open-routes", default="/health,/metrics",
                       help="comma-separated routes that need no API key ('' protects every route)")
    group.add_argument("--otlp-endpoint", default=None,
                       help="export OpenTelemetry traces to this OTLP/HTTP collector, e.g. http://localhost:4318 "
                            "(needs kolite[otel])")
    group.add_argument("--otlp-service-name", default="kolite", help="service.name of the exported traces")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                        help="debug adds one access line per request")
    parser.add_argument("--no-warmup", action="store_true", help=argparse.SUPPRESS)


def build_config(args: argparse.Namespace) -> Any:
    from kolite.server.config import AuthConfig, BatchingConfig, Limits, ServerConfig

    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
    return ServerConfig(
        artifacts=tuple(args.artifacts),
        limits=Limits(max_body_bytes=args.max_body_bytes, max_items=args.max_items,
                      max_text_chars=args.max_text_chars, timeout_s=args.timeout_s, truncate=args.truncate,
                      header_timeout_s=args.header_timeout_s, body_timeout_s=args.body_timeout_s,
                      max_connections=args.max_connections, max_header_bytes=args.max_header_bytes),
        batching=BatchingConfig(enabled=not args.no_batching, max_batch_tokens=args.max_batch_tokens,
                                max_batch_items=args.max_batch_items, max_call_tokens=args.max_call_tokens,
                                max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                                max_queue_tokens=args.max_queue_tokens),
        variant=args.variant,
        device=args.device,
        threads=args.threads,
        tokenizer_workers=args.tokenizer_workers,
        warmup=not args.no_warmup,
        exit_on_error=args.exit_on_error,
        guard=args.guard,
        memory_profile=args.memory_profile,
        auth=AuthConfig(api_key=api_key,
                        open_routes=tuple(route.strip() for route in args.open_routes.split(",") if route.strip())),
    )


def serve(args: argparse.Namespace) -> int:
    """Run the server until SIGTERM/SIGINT; 2 on bad arguments, a name collision, or (``--exit-on-error``) a model
    that cannot load, with every failing model's reason."""
    try:
        from kolite.server import runner
        from kolite.server.app import create_app
        from kolite.server.state import failure_report
        from kolite.server.tracing import otlp_tracer_provider
    except ImportError as exc:
        print(f"kolite serve: {_MISSING_DEPS} ({exc})", file=sys.stderr)
        return 2
    # Requests are the unit of parallelism here: tokenizers' own thread pool would fight onnxruntime for cores.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.processes < 1:
        print("kolite serve: --processes must be >= 1", file=sys.stderr)
        return 2
    if args.processes > 1:
        from kolite.server.processes import serve_processes

        return serve_processes(args)
    runner.configure_logging(args.log_level)
    if args.drain_s < 0 or args.graceful_timeout_s < 0:
        print("kolite serve: --drain-s and --graceful-timeout-s must be >= 0", file=sys.stderr)
        return 2
    try:
        config = build_config(args)
        provider = otlp_tracer_provider(args.otlp_endpoint, args.otlp_service_name) if args.otlp_endpoint else None
        holder: dict[str, Any] = {}
        app = create_app(config, on_fatal=lambda: setattr(holder["server"], "should_exit", True),
                         tracer_provider=provider)
    except (KoliteError, ValueError, ImportError) as exc:
        print(f"kolite serve: {exc}", file=sys.stderr)
        return 2
    if config.auth.api_key is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger("kolite.server").warning("serving on %s without an API key (--api-key or $%s)",
                                                   args.host, API_KEY_ENV)
    options = runner.RunOptions(host=args.host, port=args.port, log_level=args.log_level,
                                graceful_timeout_s=args.graceful_timeout_s, drain_s=args.drain_s, http=args.http,
                                loop=args.loop)
    holder["server"] = runner.build_server(app, options)
    if getattr(args, "reuse_port", False):  # one of --processes N children: its own socket on the shared port
        from kolite.server.processes import reuse_port_socket

        holder["server"].run(sockets=[reuse_port_socket(args.host, args.port)])
    else:
        holder["server"].run()
    failed = [model for model in app.state.kolite.models.values() if model.state == "failed"]
    if failed and config.exit_on_error:
        print(f"kolite serve: {failure_report(failed)}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m kolite.server ARTIFACT ...`` (same options as ``kolite serve``)."""
    parser = argparse.ArgumentParser(prog="python -m kolite.server", description="Serve kolite artifacts over HTTP.",
                                     formatter_class=DefaultsHelpFormatter)
    add_arguments(parser)
    return serve(parser.parse_args(argv))
