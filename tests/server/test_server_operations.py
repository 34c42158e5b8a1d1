"""Issue 15.3, operating `kolite serve`: OpenTelemetry spans (in-memory exporter), `--api-key`, the 429 budget in
queued tokens, request ids in responses and log lines, and /metrics without `*_created` series."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading

import numpy as np
import pytest
from kolite.server.app import create_app
from kolite.server.batcher import DynamicBatcher, QueueFullError
from kolite.server.config import BatchingConfig, ServerConfig
from live_server import assert_error, post_concurrently, serve_in_thread, serve_subprocess, stop

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def artifact(tiny_artifact):
    return tiny_artifact("000")


# ---- tracing ----


def test_spans_for_request_tokenize_queue_inference_and_decode(artifact):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(ServerConfig(artifacts=(artifact,)), tracer_provider=provider)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with serve_in_thread(app) as server, server.client() as client:
        exporter.clear()  # the health checks of the start-up
        response = client.post("/predict", json={"inputs": ["재밌다", "별로였다 정말"]},
                               headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01", "x-request-id": "r-1"})
        assert response.status_code == 200
    spans = {span.name: span for span in exporter.get_finished_spans()}
    (http,) = [span for span in spans.values() if span.kind.name == "SERVER"]
    assert {"tokenize", "queue wait", "inference", "decode"} <= set(spans)
    assert http.attributes["http.route"] == "/predict" and http.attributes["http.response.status_code"] == 200
    assert http.attributes["kolite.request_id"] == "r-1"
    assert format(http.context.trace_id, "032x") == trace_id  # joined the caller's trace
    for name in ("tokenize", "queue wait", "inference", "decode"):
        span = spans[name]
        assert span.context.trace_id == http.context.trace_id and span.parent.span_id == http.context.span_id
        assert span.attributes["kolite.model"] == artifact.name
    inference = spans["inference"].attributes
    assert inference["kolite.batch.items"] == 2 and inference["kolite.request.items"] == 2
    assert inference["kolite.batch.padded_tokens"] >= inference["kolite.request.tokens"] > 2
    ordered = [spans[name] for name in ("tokenize", "queue wait", "inference", "decode")]
    assert all(a.end_time <= b.start_time for a, b in itertools.pairwise(ordered))


def test_otlp_endpoint_exports_the_spans_to_a_collector(artifact):
    """`--otlp-endpoint` end to end: a stand-in collector receives OTLP/HTTP protobuf with kolite's spans, flushed
    at shutdown."""
    import http.server

    received: list[bytes] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.path.encode() + b" " + self.rfile.read(int(self.headers["content-length"])))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
        with serve_subprocess([artifact], "--otlp-endpoint", endpoint, "--otlp-service-name", "kolite-test") as server:
            with server.client() as client:
                assert client.post("/predict", json={"inputs": "좋다"}).status_code == 200
            stop(server.process)
    finally:
        collector.shutdown()
    exported = b"".join(received)
    assert exported.startswith(b"/v1/traces ")
    for name in (b"tokenize", b"queue wait", b"inference", b"decode", b"kolite-test", b"kolite.batch.padded_tokens"):
        assert name in exported, name


def test_tracing_off_imports_no_sdk(artifact):
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from kolite.server.app import create_app; "
            "from kolite.server.config import ServerConfig; create_app(ServerConfig(artifacts=(Path(sys.argv[1]),)));"
            " print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))")
    result = subprocess.run([sys.executable, "-c", code, str(artifact)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_otlp_endpoint_without_the_sdk_names_the_extra(artifact, monkeypatch):
    import builtins

    from kolite.server.tracing import otlp_tracer_provider

    real_import = builtins.__import__

    def no_sdk(name, *args, **kwargs):
        if name.startswith("opentelemetry.sdk") or name.startswith("opentelemetry.exporter"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sdk)
    with pytest.raises(ImportError, match=r"kolite\[otel\]"):
        otlp_tracer_provider("http://127.0.0.1:4318", "kolite")


# ---- API key ----


@pytest.mark.parametrize("how", ["env", "flag"])
def test_api_key_guards_every_route_but_health_and_metrics(artifact, how):
    options, env = (("--api-key", KEY), None) if how == "flag" else ((), {"KOLITE_API_KEY": KEY})
    with serve_subprocess([artifact], *options, env=env) as server, server.client() as client:
        if how == "env":
            assert KEY not in " ".join(server.process.args)  # the key stays out of `ps`
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": KEY},
                        {"authorization": f"Basic {KEY}"}):
            response = client.post("/predict", json={"inputs": "좋다"}, headers=headers)
            assert_error(response, 401, "Unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
        assert_error(client.get("/models"), 401, "Unauthorized")
        assert_error(client.post("/nowhere", json={}), 401, "Unauthorized")  # routes are not revealed either
        authorized = {"authorization": f"Bearer {KEY}"}
        assert client.post("/predict", json={"inputs": "좋다"}, headers=authorized).status_code == 200
        assert client.get("/models", headers=authorized).status_code == 200
        assert client.get("/health").status_code == 200
        metrics = client.get("/metrics").text
    assert 'kolite_errors_total{error_type="Unauthorized",route="/predict"} 4.0' in metrics


def test_open_routes_can_be_closed_too(artifact):
    # The readiness check runs with the key; nothing is open.
    with serve_subprocess([artifact], "--open-routes", "/health", env={"KOLITE_API_KEY": KEY}) as server, \
            server.client() as client:
        assert_error(client.get("/metrics"), 401, "Unauthorized")
        assert client.get("/metrics", headers={"authorization": f"Bearer {KEY}"}).status_code == 200


# ---- the 429 budget in tokens ----


class _Encoded:
    def __init__(self, tokens: int) -> None:
        self.lengths = np.array([tokens])
        self.sequences = [[0] * tokens]


class _Observer:
    def queue_size(self, waiting: int) -> None:
        pass

    def batch_done(self, items: int, padded_tokens: int, seconds: float, queue_wait_s: float) -> None:
        pass


def test_token_budget_admits_a_request_alone_however_large_and_refuses_a_queue_full_of_tokens():
    gate = threading.Event()  # the model runs a batch only while the gate is open

    def run_batch(jobs):
        gate.wait(30)
        return [None] * len(jobs)

    config = BatchingConfig(max_queue=100, max_queue_tokens=100, max_batch_items=1)
    batcher = DynamicBatcher("m", run_batch, config, _Observer())
    batcher.start()

    async def scenario() -> None:
        huge = asyncio.create_task(batcher.submit(_Encoded(500)))  # alone: admitted although 5x the budget
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError, match="tokens"):
            await batcher.submit(_Encoded(10))  # the queue is full of tokens
        gate.set()
        await huge
        gate.clear()
        small = [asyncio.create_task(batcher.submit(_Encoded(40))) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError, match="max_queue_tokens=100"):
            await batcher.submit(_Encoded(40))  # 80 + 40 tokens over 100, with 2 of 100 requests admitted
        gate.set()
        await asyncio.gather(*small)
        assert batcher.admitted == 0
        await batcher.submit(_Encoded(90))  # the budget is free again

    try:
        asyncio.run(scenario())
    finally:
        gate.set()
        batcher.close(timeout=10)


def test_server_token_budget_429(artifact):
    text = " ".join(["가"] * 100)  # about 100 tokens
    with serve_subprocess([artifact], "--max-queue-tokens", "150", "--max-wait-ms", "1500") as server:
        responses = post_concurrently(server.url, "/predict", [{"inputs": text}] * 4)
        with server.client() as client:
            alone = client.post("/predict", json={"inputs": [text, text, text]})  # 300 tokens, queue empty
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and 429 in statuses
    for response in responses:
        if response.status_code == 429:
            assert "max_queue_tokens=150" in assert_error(response, 429, "Overloaded")["error"]
    assert alone.status_code == 200


# ---- request ids, metrics ----


def test_request_ids_are_echoed_generated_and_logged(artifact):
    with serve_subprocess([artifact], "--log-level", "debug") as server:
        with server.client() as client:
            given = client.post("/predict", json={"inputs": "좋다"}, headers={"x-request-id": "abc-123"})
            assert given.headers["x-request-id"] == "abc-123"
            error = client.post("/predict", json={"inputs": []}, headers={"x-request-id": "err-456"})
            assert assert_error(error, 400, "Empty")["request_id"] == "err-456"
            generated = client.post("/predict", json={"inputs": "좋다"}).headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", generated)
            for unusable in ("has space", "x" * 201):
                replaced = client.get("/health", headers={"x-request-id": unusable}).headers["x-request-id"]
                assert re.fullmatch(r"[0-9a-f]{32}", replaced)
        stop(server.process)
        log = server.process.stderr.read().decode()
    assert re.search(r"\[abc-123\].*POST /predict", log), log[-2000:]
    assert re.search(r"\[err-456\].*POST /predict", log)


def test_metrics_have_no_created_series(artifact):
    with serve_subprocess([artifact]) as server, server.client() as client:
        client.post("/predict", json={"inputs": "좋다"})
        text = server.metrics()
    assert "kolite_requests_total" in text and "_created" not in text


def test_the_open_file_limit_is_raised_for_the_connection_cap():
    import subprocess
    import sys

    code = ("import resource; from kolite.server.runner import ensure_file_limit; "
            "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)); ensure_file_limit(1024); "
            "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    soft, hard = (int(x) for x in result.stdout.split())
    needed = 1024 + 128  # the cap plus spare descriptors for model files, pipes and logs
    assert soft == (needed if hard < 0 else min(needed, hard))  # RLIM_INFINITY is -1
