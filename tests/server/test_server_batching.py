"""Dynamic batching and self-protection of `kolite serve` on a real server: concurrent requests share inference
batches (metrics prove it) and get their own results back; overload answers 429 and the server stays healthy;
timeouts answer 504; /health is 503 until warm-up is done; SIGTERM finishes in-flight requests."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import kolite
import numpy as np
import pytest
from kolite.server.app import create_app
from kolite.server.config import BatchingConfig, Limits, ServerConfig
from kolite.server.models import ServedModel
from live_server import (
    assert_error,
    histogram,
    post_concurrently,
    serve_in_thread,
    serve_subprocess,
    stop,
)

TEXTS = [f"{i}번째 리뷰: {'재밌다 ' * (i % 5)}{'지루하다 ' * (i % 3)}" for i in range(12)]
MAX_QUEUE = 12


@pytest.fixture(scope="module")
def artifact(tiny_artifact):
    return tiny_artifact("000")


@pytest.fixture(scope="module")
def batching_server(artifact):
    # A long max wait and a batch limit above the queue bound: admitted requests wait together for company,
    # so what forms a batch and what overflows does not depend on the machine's speed.
    with serve_subprocess([artifact], "--max-wait-ms", "1500", "--max-queue", str(MAX_QUEUE),
                          "--max-batch-items", "256") as running:
        yield running


def test_concurrent_requests_share_batches_and_get_their_own_results(batching_server, artifact):
    name = artifact.name
    before = histogram(batching_server.metrics(), "kolite_batch_size_items", name)
    responses = post_concurrently(batching_server.url, "/predict", [{"inputs": text} for text in TEXTS])
    assert [r.status_code for r in responses] == [200] * len(TEXTS)
    with kolite.load(artifact) as model:
        expected = model.classify(TEXTS, top_k=None)
    for response, want in zip(responses, expected, strict=True):
        got = response.json()
        assert [p["label"] for p in got] == [p.label for p in want]
        np.testing.assert_allclose([p["score"] for p in got], [p.score for p in want], rtol=1e-5, atol=1e-6)
    after = histogram(batching_server.metrics(), "kolite_batch_size_items", name)
    batches = after["count"] - before.get("count", 0)
    items = after["sum"] - before.get("sum", 0)
    singles = after["1.0"] - before.get("1.0", 0)
    assert items == len(TEXTS)
    assert batches < len(TEXTS) and singles < batches  # at least one batch held several requests


def test_overload_answers_429_and_the_server_stays_healthy(batching_server):
    bodies = [{"inputs": text} for text in TEXTS * 4]
    responses = post_concurrently(batching_server.url, "/predict", bodies)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}
    assert statuses.count(429) >= len(bodies) - MAX_QUEUE
    for response in responses:
        if response.status_code == 429:
            assert_error(response, 429, "Overloaded")
            assert response.headers["retry-after"] == "1"
    with batching_server.client() as client:
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json={"inputs": "다시 정상"}).status_code == 200
    assert 'kolite_errors_total{error_type="Overloaded",route="/predict"}' in batching_server.metrics()


def test_no_batching_runs_every_request_alone(artifact):
    with serve_subprocess([artifact], "--no-batching") as server:
        responses = post_concurrently(server.url, "/predict", [{"inputs": text} for text in TEXTS[:6]])
        assert [r.status_code for r in responses] == [200] * 6
        after = histogram(server.metrics(), "kolite_batch_size_items", artifact.name)
    # Warm-up runs outside the batcher, so every observed batch is a request, each of one text.
    assert after["count"] == after["sum"] == after["1.0"] == 6


def _config(artifact, **batching) -> ServerConfig:
    return ServerConfig(artifacts=(artifact,), limits=Limits(timeout_s=0.3), batching=BatchingConfig(**batching))


def test_health_is_503_until_warm_up_is_done(artifact, monkeypatch):
    release = threading.Event()
    original = ServedModel.load

    def slow_load(self):
        release.wait(60)
        original(self)

    monkeypatch.setattr(ServedModel, "load", slow_load)
    with serve_in_thread(create_app(_config(artifact)), wait_healthy=False) as server, server.client() as client:
        assert_error(client.get("/health"), 503, "Unhealthy")
        assert_error(client.post("/predict", json={"inputs": "아직"}), 503, "Unhealthy")
        assert client.get("/metrics").status_code == 200
        assert client.get("/models").json()["models"][0]["name"] == artifact.name
        release.set()
        deadline = time.monotonic() + 60
        while client.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/health").json() == {"status": "ok", "models": [artifact.name]}


def test_request_waiting_past_the_timeout_gets_504_and_is_dropped(artifact):
    app = create_app(_config(artifact, max_wait_ms=3000, max_batch_items=64))
    with serve_in_thread(app) as server, server.client() as client:
        assert_error(client.post("/predict", json={"inputs": "늦다"}), 504, "Timeout")
        deadline = time.monotonic() + 10
        # The abandoned job is dropped from the queue and never occupies the model.
        while app.state.kolite.models[artifact.name].batcher.admitted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.kolite.models[artifact.name].batcher.admitted == 0


@pytest.mark.slow  # a real server process, signalled mid-request, waited to its end
def test_sigterm_finishes_in_flight_requests(artifact):
    with serve_subprocess([artifact], "--max-wait-ms", "1500") as server, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, f"{server.url}/predict", json={"inputs": "끝까지 처리"}, timeout=30,
                              trust_env=False)
        deadline = time.monotonic() + 10
        while f'kolite_queue_size{{model="{artifact.name}"}} 1.0' not in server.metrics():
            assert time.monotonic() < deadline, "the request never reached the queue"
            time.sleep(0.02)
        returncode = stop(server.process)
        response = pending.result(timeout=30)
    assert response.status_code == 200, response.text
    assert [p["label"] for p in response.json()]
    assert returncode in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM once the graceful shutdown is done


def test_cli_rejects_a_folder_that_is_not_an_artifact(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "kolite.server", str(tmp_path), "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "manifest.json" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("budget", [1, 64, 256, 4096])
def test_plan_covers_every_item_once_within_the_token_budget(budget):
    from kolite.batching import plan_batches, planned_cost

    lengths = np.random.default_rng(budget).integers(1, 300, size=200).tolist()
    calls = plan_batches(lengths, 256, budget)
    assert sorted(i for call in calls for i in call.tolist()) == list(range(len(lengths)))
    for call in calls:
        padded = len(call) * max(lengths[i] for i in call)
        assert padded <= budget or len(call) == 1
        assert [lengths[i] for i in call] == sorted((lengths[i] for i in call), reverse=True)
    assert planned_cost(lengths, 256, budget) == sum(len(c) * max(lengths[i] for i in c) for c in calls)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m.update(labels=["only"]), "1 labels"),
        (lambda m: m.update(labels=["a", "b", "c"]), "3 labels"),
        (lambda m: m["tokenizer"].update(file="/etc/passwd"), "outside the artifact folder"),
        (lambda m: m["tokenizer"].update(file="missing.json"), "missing from the artifact"),
    ],
)
def test_a_model_that_fails_to_load_is_reported_failed_never_warming_up(artifact, tmp_path, change, reason, caplog):
    import json
    import shutil

    folder = shutil.copytree(artifact, tmp_path / "broken")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    app = create_app(ServerConfig(artifacts=(folder,), warmup=False))
    with (
        caplog.at_level("ERROR", logger="kolite.server"),
        serve_in_thread(app, wait_healthy=False) as running,
        running.client() as client,
    ):
        deadline = time.monotonic() + 60
        while (models := client.get("/models").json()["models"])[0]["state"] == "loading":
            assert time.monotonic() < deadline, "the model never left the loading state"
            time.sleep(0.05)
        (info,) = models
        assert info["state"] == "failed" and reason in info["error"]
        health = assert_error(client.get("/health"), 503, "Unhealthy")
        assert "failed" in health["error"] and reason in health["error"] and "warming up" not in health["error"]
        assert_error(client.post("/predict", json={"inputs": "좋다"}), 503, "Unhealthy")
    assert any(reason in record.getMessage() for record in caplog.records)


def test_cli_exits_2_when_a_model_cannot_load(artifact, tmp_path):
    import json
    import shutil
    import subprocess
    import sys

    folder = shutil.copytree(artifact, tmp_path / "one-label")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["labels"] = ["only"]
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "kolite.server", str(folder), "--port", "0"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2  # --exit-on-error, the default (Triton's convention)
    assert "failed to load" in result.stderr and "1 labels" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("seed", ["000", "004"])
def test_concurrent_clients_get_exactly_the_bytes_a_lone_client_gets(tiny_artifact, seed):
    """The default CPU variant is batch-invariant int8: whoever shares a batch, an answer is the same bytes."""
    artifact = tiny_artifact(seed)
    probe = {"000": "이 영화 정말 최고였어요 배우의 연기가 대단함", "004": "홍길동은 서울에서 삼성전자에 다닌다"}[seed]
    others = [f"{i}번째 다른 리뷰 " + "아주 긴 문장 " * (i % 11) for i in range(11)]
    # A long wait and a big batch: the eleven partners of very different lengths share the probe's batch.
    with serve_subprocess([artifact], "--max-wait-ms", "800", "--max-batch-items", "256") as running:
        with running.client() as client:
            (info,) = client.get("/models").json()["models"]
            assert info["variant"] == "int8-static"
            alone = client.post("/predict", json={"inputs": probe}).content
        bodies = [{"inputs": text} for text in [*others[:6], probe, *others[6:]]]
        responses = post_concurrently(running.url, "/predict", bodies)
        batches = histogram(running.metrics(), "kolite_batch_size_items", artifact.name)
    assert all(r.status_code == 200 for r in responses)
    assert responses[6].content == alone
    assert batches["count"] < 1 + len(responses)  # the concurrent requests did share batches
