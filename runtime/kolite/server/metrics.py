"""Prometheus metrics, in a registry of their own per app (several servers can live in one process).

The ``*_created`` series (one timestamp per counter and histogram) are left out: they double the page, and
Prometheus ignores them unless created timestamps are enabled.
"""

from __future__ import annotations

import prometheus_client.metrics
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ModelMetrics", "ServerMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ITEM_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


class ServerMetrics:
    """Every metric the server exports, registered in its own ``CollectorRegistry``."""

    def __init__(self) -> None:
        # prometheus_client's switch is process-wide; the server owns its process.
        prometheus_client.metrics.disable_created_metrics()
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
        self.guarded_rows = Counter("kolite_guarded_rows", "Sequences the fidelity guard re-ran in the float graph "
                                    "(their int8 decision margin was below tau)", ("model",), registry=r)
        self.inference = Histogram("kolite_inference_duration_seconds", "Wall time of one inference batch",
                                   ("model",), buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("kolite_queue_wait_seconds", "Time the oldest request of a batch waited",
                                    ("model",), buckets=_LATENCY_BUCKETS, registry=r)
        self.ready = Gauge("kolite_ready", "1 once every model is loaded and warmed up", registry=r)
        self.open_connections = Gauge("kolite_open_connections", "Open HTTP connections", registry=r)
        self.connection_errors = Counter("kolite_connection_errors", "Connections closed before a request was read: "
                                         "header_timeout, max_connections, header_too_large", ("reason",), registry=r)

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
