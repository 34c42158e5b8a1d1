"""Prometheus metrics (own registry per app, so several servers can live in one process) and the ASGI
middleware that counts every request, times it and enforces the body-size cap before the body is read."""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kolite.server.errors import ApiError, error_body

__all__ = ["ModelMetrics", "RequestMiddleware", "ServerMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ITEM_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


class ServerMetrics:
    """Every metric the server exports, registered in its own ``CollectorRegistry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("kolite_requests", "HTTP requests by route, method and status",
                                ("route", "method", "status"), registry=r)
        self.latency = Histogram("kolite_request_duration_seconds", "HTTP request latency",
                                 ("route",), buckets=_LATENCY_BUCKETS, registry=r)
        self.errors = Counter("kolite_errors", "Error responses by route and error_type",
                              ("route", "error_type"), registry=r)
        self.queue = Gauge("kolite_queue_size", "Requests waiting for a batch", ("model",), registry=r)
        self.batch_items = Histogram("kolite_batch_size_items", "Texts per inference batch",
                                     ("model",), buckets=_ITEM_BUCKETS, registry=r)
        self.batch_tokens = Histogram("kolite_batch_size_tokens", "Padded tokens (items x longest) per batch",
                                      ("model",), buckets=_TOKEN_BUCKETS, registry=r)
        self.batch_requests = Counter("kolite_batched_requests", "Requests served by inference batches",
                                      ("model",), registry=r)
        self.inference = Histogram("kolite_inference_duration_seconds", "Wall time of one inference batch",
                                   ("model",), buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("kolite_queue_wait_seconds", "Time the oldest request of a batch waited",
                                    ("model",), buckets=_LATENCY_BUCKETS, registry=r)
        self.ready = Gauge("kolite_ready", "1 once every model is loaded and warmed up", registry=r)

    def for_model(self, name: str) -> ModelMetrics:
        return ModelMetrics(self, name)


class ModelMetrics:
    """The ``BatchObserver`` of one model's batcher (called from its worker thread; prometheus is thread-safe)."""

    def __init__(self, metrics: ServerMetrics, model: str) -> None:
        self._queue = metrics.queue.labels(model)
        self._items = metrics.batch_items.labels(model)
        self._tokens = metrics.batch_tokens.labels(model)
        self._inference = metrics.inference.labels(model)
        self._wait = metrics.queue_wait.labels(model)
        self._queue.set(0)

    def queue_size(self, waiting: int) -> None:
        self._queue.set(waiting)

    def batch_done(self, items: int, padded_tokens: int, seconds: float, queue_wait_s: float) -> None:
        self._items.observe(items)
        self._tokens.observe(padded_tokens)
        self._inference.observe(seconds)
        self._wait.observe(max(0.0, queue_wait_s))


class _BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the {limit} byte limit (--max-body-bytes)", "PayloadTooLarge")


class RequestMiddleware:
    """Pure ASGI middleware (no per-request task like BaseHTTPMiddleware): metrics + body cap.

    A Content-Length over the cap is refused before reading; a chunked body is counted as it streams and
    the read fails with 413 (an ``ApiError``, rendered by the error handlers) as soon as it passes the cap.
    """

    def __init__(self, app: Any, metrics: ServerMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500, "error_type": ""}

        async def send_recording(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _send_json(send_recording, 413, error_body(str(_BodyTooLarge(self.max_body_bytes).detail),
                                                             "PayloadTooLarge"))
        else:
            await self.app(scope, self._limited(receive), send_recording)
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        code = status["code"]
        self.metrics.requests.labels(route, scope["method"], str(code)).inc()
        self.metrics.latency.labels(route).observe(time.perf_counter() - started)
        if code >= 400:
            self.metrics.errors.labels(route, scope.get("kolite.error_type", str(code))).inc()

    def _limited(self, receive: Any) -> Any:
        limit = self.max_body_bytes
        seen = 0

        async def receive_limited() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge(limit)
            return message

        return receive_limited


def _content_length(scope: dict[str, Any]) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
