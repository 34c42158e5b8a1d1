"""OpenTelemetry tracing of a request's way through the server (``kolite[otel]``, ``--otlp-endpoint``).

The HTTP server span is FastAPI's own (its native telemetry: W3C ``traceparent`` propagation, semantic-convention
attributes); kolite adds its children: ``tokenize``, ``queue wait``, ``inference`` (with the batch's size and
padded tokens) and ``decode``. Queue wait and inference happen in the batcher's thread for a whole batch; their
spans are recorded afterwards, on the request's own trace, from the times the batcher noted (``BatchRun``).

Without ``--otlp-endpoint`` nothing of the SDK is imported and every hook is a no-op.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from kolite.server.batcher import Job

__all__ = ["Tracing", "otlp_tracer_provider"]


class Tracing:
    """kolite's spans of one request; ``provider=None`` turns them off."""

    def __init__(self, provider: Any | None = None) -> None:
        self.provider = provider
        self._tracer = None
        if provider is not None:
            from kolite import __version__

            self._tracer = provider.get_tracer("kolite.server", __version__)

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def fastapi_telemetry(self) -> dict[str, Any]:
        """``FastAPI(telemetry=...)``: its HTTP server span on kolite's provider, or no telemetry at all."""
        if self.provider is None:
            return {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}
        return {"tracer_provider": self.provider, "metrics": False, "logs": False, "operation_spans": False,
                "auto_configure": False}

    def span(self, name: str, **attributes: Any) -> AbstractContextManager[Any]:
        """A child of the current span for the ``with`` block."""
        if self._tracer is None:
            return nullcontext()
        return self._tracer.start_as_current_span(name, attributes=attributes)

    def annotate(self, **attributes: Any) -> None:
        """Attributes of the request's current span (the HTTP span in a handler)."""
        if self._tracer is not None:
            from opentelemetry import trace

            trace.get_current_span().set_attributes(attributes)

    def batched(self, job: Job, model: str) -> None:
        """``queue wait`` and ``inference`` spans of a job that ran, from the batcher's clock readings."""
        ran = job.ran
        if self._tracer is None or ran is None:
            return
        wait = self._tracer.start_span("queue wait", start_time=job.enqueued_ns, attributes={"kolite.model": model})
        wait.end(end_time=ran.started_ns)
        inference = self._tracer.start_span("inference", start_time=ran.started_ns, attributes={
            "kolite.model": model,
            "kolite.batch.requests": ran.requests,
            "kolite.batch.items": ran.items,
            "kolite.batch.padded_tokens": ran.padded_tokens,
            "kolite.request.items": len(job.encoded.sequences),
            "kolite.request.tokens": job.tokens,
        })
        inference.end(end_time=ran.finished_ns)

    def shutdown(self) -> None:
        """Export what is still buffered (the batch span processor) before the process exits."""
        if self.provider is not None and hasattr(self.provider, "shutdown"):
            self.provider.shutdown()


def otlp_tracer_provider(endpoint: str, service_name: str) -> Any:
    """An SDK tracer provider exporting in batches to an OTLP/HTTP collector (``http://host:4318``).

    Raises ImportError naming the extra when the OpenTelemetry SDK is not installed.
    """
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ImportError(f"--otlp-endpoint needs the tracing extra: pip install 'kolite[otel]' ({exc})") from exc
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"  # OTLP/HTTP's traces path; an explicit exporter endpoint is used as given
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    return provider
