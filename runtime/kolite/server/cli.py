"""``kolite serve``: argparse wiring and the uvicorn server (graceful shutdown on SIGINT/SIGTERM)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from kolite.errors import KoliteError

__all__ = ["build_config", "main", "register", "serve"]

_MISSING_DEPS = "kolite serve needs the server extra: pip install 'kolite[serve]'"


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
                        help="artifact folders; each model is named after its folder")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; 0.0.0.0 in "
                                                            "containers)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--variant", default="auto", help="variant to load for every model (default auto)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="onnxruntime intra-op threads per model (default: physical cores)")
    parser.add_argument("--tokenizer-workers", type=int, default=None,
                        help="threads that tokenize requests and build responses off the event loop "
                             "(default: min(4, CPUs))")
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
    group.add_argument("--no-batching", action="store_true", help="run every request alone (baseline)")
    group = parser.add_argument_group("request limits")
    group.add_argument("--max-body-bytes", type=int, default=lim.max_body_bytes, help="larger bodies get 413")
    group.add_argument("--max-items", type=int, default=lim.max_items, help="more texts per request get 413")
    group.add_argument("--max-text-chars", type=int, default=lim.max_text_chars,
                       help="longer texts are cut (truncate=true, default) or refused with 413")
    group.add_argument("--truncate", action=argparse.BooleanOptionalAction, default=True,
                       help="default for requests that do not set `truncate`")
    group.add_argument("--timeout-s", type=float, default=lim.timeout_s, help="per-request timeout (504)")
    group.add_argument("--graceful-timeout-s", type=float, default=30.0,
                       help="on SIGTERM, how long in-flight requests may take to finish")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--no-warmup", action="store_true", help=argparse.SUPPRESS)


def build_config(args: argparse.Namespace) -> Any:
    from kolite.server.config import BatchingConfig, Limits, ServerConfig

    return ServerConfig(
        artifacts=tuple(args.artifacts),
        limits=Limits(max_body_bytes=args.max_body_bytes, max_items=args.max_items,
                      max_text_chars=args.max_text_chars, timeout_s=args.timeout_s, truncate=args.truncate),
        batching=BatchingConfig(enabled=not args.no_batching, max_batch_tokens=args.max_batch_tokens,
                                max_batch_items=args.max_batch_items, max_call_tokens=args.max_call_tokens,
                                max_wait_ms=args.max_wait_ms, max_queue=args.max_queue),
        variant=args.variant,
        device=args.device,
        threads=args.threads,
        tokenizer_workers=args.tokenizer_workers,
        warmup=not args.no_warmup,
    )


def serve(args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM; 1 if the models failed to load, 2 on bad arguments."""
    try:
        import uvicorn

        from kolite.server.app import create_app
    except ImportError as exc:
        print(f"kolite serve: {_MISSING_DEPS} ({exc})", file=sys.stderr)
        return 2
    # Requests are the unit of parallelism here: tokenizers' own thread pool would fight onnxruntime for cores.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = build_config(args)
        holder: dict[str, Any] = {}
        app = create_app(config, on_fatal=lambda: setattr(holder["server"], "should_exit", True))
    except (KoliteError, ValueError) as exc:
        print(f"kolite serve: {exc}", file=sys.stderr)
        return 2
    uvicorn_config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.log_level == "debug",  # one log line per request costs throughput
        timeout_graceful_shutdown=args.graceful_timeout_s,
        backlog=2048,
    )
    server = uvicorn.Server(uvicorn_config)
    holder["server"] = server
    server.run()
    return 1 if any(model.state == "failed" for model in app.state.kolite.models.values()) else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m kolite.server ARTIFACT ...`` (same options as ``kolite serve``)."""
    parser = argparse.ArgumentParser(prog="python -m kolite.server", description="Serve kolite artifacts over HTTP.")
    add_arguments(parser)
    return serve(parser.parse_args(argv))
