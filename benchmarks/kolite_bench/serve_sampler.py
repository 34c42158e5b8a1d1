"""Where `kolite serve`'s CPU goes, by sampling: ``python -m kolite_bench.serve_sampler ARGS`` runs
``python -m kolite.server ARGS`` with a thread that looks at every other thread's Python stack every
``KOLITE_SAMPLE_MS`` (default 2) milliseconds and counts, per thread role, the innermost frame's category (HTTP
parsing, middleware, routing, validation, JSON, tokenizing, the model, thread hops...). A thread parked in a
wait (selector, condition, queue) counts as idle and is left out, so the shares are of busy samples.

py-spy is not available here; this is the stdlib's ``sys._current_frames``. Its own cost is one GIL hold per
sample (~20 µs at 2 ms: ~1 %). The counts go to ``KOLITE_SAMPLE_OUT`` (JSON), rewritten every second, so a
server ended by SIGTERM still leaves them. ``kolite_bench.loadtest --profile`` starts the server this way.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import time
from collections import Counter
from pathlib import Path

__all__ = ["CATEGORIES", "category", "main"]

# (path fragment, category): the first fragment found in the innermost frame's file names it. Order matters.
CATEGORIES = (
    ("onnxruntime", "model (onnxruntime)"),
    ("kolite/session", "model (onnxruntime)"),
    ("tokenizers", "tokenize"),
    ("kolite/tokenization", "tokenize"),
    ("kolite/normalization", "tokenize"),
    ("kolite/input_decoding", "tokenize"),
    ("kolite/classification", "decode (softmax, labels)"),
    ("kolite/results", "decode (softmax, labels)"),
    ("kolite/batching", "batch planning"),
    ("kolite/server/batcher", "batcher"),
    ("kolite/server/middleware", "middleware"),
    ("kolite/server/connections", "connection guard"),
    ("kolite/server/tracing", "tracing"),
    ("kolite/server/metrics", "metrics"),
    ("prometheus_client", "metrics"),
    ("kolite/server", "kolite handler"),
    ("json", "JSON"),
    ("orjson", "JSON"),
    ("pydantic", "validation (pydantic)"),
    ("fastapi", "FastAPI routing/deps"),
    ("starlette", "Starlette"),
    ("anyio", "anyio"),
    ("uvicorn", "HTTP (uvicorn)"),
    ("httptools", "HTTP (uvicorn)"),
    ("h11", "HTTP (uvicorn)"),
    ("concurrent/futures", "thread hops (executor)"),
    ("threading", "thread hops (executor)"),
    ("asyncio", "event loop"),
    ("numpy", "numpy"),
)
_IDLE = ("select", "wait", "_worker", "get", "sleep", "poll", "run_forever", "_run_once", "acquire")


def category(frame: object) -> str | None:
    """The innermost frame's category, or None when the thread is parked (idle)."""
    code = frame.f_code  # type: ignore[attr-defined]
    path = code.co_filename.replace("\\", "/")
    if code.co_name in _IDLE and any(p in path for p in ("selectors", "threading", "queue", "concurrent/futures")):
        return None
    if code.co_name == "select" or (code.co_name == "_run_once" and "asyncio" in path):
        return None
    if code.co_name in ("run_forever", "run_until_complete", "run") and ("asyncio" in path or "uvloop" in path):
        return None  # uvloop's loop is C: this frame is innermost while it waits in epoll (or runs C callbacks)
    for fragment, name in CATEGORIES:
        if fragment in path:
            return name
    return "other: " + Path(path).name


def _role(thread: threading.Thread | None) -> str:
    name = thread.name if thread else "?"
    if name == "MainThread":
        return "event loop thread"
    if name.startswith("kolite-tokenizer"):
        return "tokenizer pool"
    if name.startswith("kolite-batcher"):
        return "batcher (model) thread"
    return "other threads"


def _sample(out: Path, interval_s: float) -> None:
    counts: dict[str, Counter[str]] = {}
    frames: dict[str, Counter[str]] = {}  # innermost file:function per role, to check the categories
    own = threading.get_ident()
    last_write = time.monotonic()
    while True:
        time.sleep(interval_s)
        threads = {t.ident: t for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            if ident == own:
                continue
            role = _role(threads.get(ident))
            counts.setdefault(role, Counter())[category(frame) or "idle"] += 1
            code = frame.f_code
            frames.setdefault(role, Counter())[f"{Path(code.co_filename).name}:{code.co_name}"] += 1
        if time.monotonic() - last_write > 1.0:
            last_write = time.monotonic()
            summary = {role: dict(c) for role, c in counts.items()}
            summary["innermost frames"] = {role: dict(c.most_common(15)) for role, c in frames.items()}
            out.write_text(json.dumps(summary, indent=1), encoding="utf-8")


def main() -> None:
    out = Path(os.environ.get("KOLITE_SAMPLE_OUT", "serve-samples.json"))
    interval_s = float(os.environ.get("KOLITE_SAMPLE_MS", "2")) / 1000
    threading.Thread(target=_sample, args=(out, interval_s), name="kolite-sampler", daemon=True).start()
    sys.argv = ["kolite.server", *sys.argv[1:]]
    runpy.run_module("kolite.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
