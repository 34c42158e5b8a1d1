"""`kolite serve` API against a real server (subprocess, free loopback port) serving a classifier and an NER model:
every endpoint, results equal to the runtime's own, and every client error a clear 4xx JSON — never a 500."""

from __future__ import annotations

import json

import kolite
import numpy as np
import pytest
from live_server import assert_error, serve_subprocess

TEXTS = ["영화 정말 최고였어요 배우들 연기가 대단함", "별로", "", "이 영화는 시간 낭비였다 ㅋㅋ", "Mixed 한국어 😀"]
NER_TEXTS = ["홍길동은 서울에서 삼성전자에 다닌다", "2024년 3월 1일 부산 해운대", ""]
MAX_BODY = 65_536
MAX_ITEMS = 8
MAX_CHARS = 2_000


@pytest.fixture(scope="module")
def server(artifacts):
    with serve_subprocess([artifacts["cls"], artifacts["ner"]], "--max-body-bytes", str(MAX_BODY),
                          "--max-items", str(MAX_ITEMS), "--max-text-chars", str(MAX_CHARS)) as running:
        yield running


@pytest.fixture(scope="module")
def names(server):
    with server.client() as client:
        models = client.get("/models").json()["models"]
    return {m["task"]: m["name"] for m in models}


@pytest.fixture(scope="module")
def reference(artifacts):
    classifier, tagger = kolite.load(artifacts["cls"]), kolite.load(artifacts["ner"])
    yield classifier, tagger
    classifier.close()
    tagger.close()


def test_health_models_and_docs(server, artifacts, reference):
    with server.client() as client:
        assert client.get("/health").json()["status"] == "ok"
        models = {m["name"]: m for m in client.get("/models").json()["models"]}
        assert set(models) == {artifacts["cls"].name, artifacts["ner"].name}
        classifier = models[artifacts["cls"].name]
        assert classifier["task"] == "text-classification"
        assert classifier["labels"] == list(reference[0].manifest.labels)
        assert classifier["variant"] == reference[0].variant.name
        assert models[artifacts["ner"].name]["task"] == "token-classification"
        spec = client.get("/openapi.json").json()
        assert {"/predict", "/", "/invocations", "/tag", "/models/{name}/predict", "/models", "/health",
                "/metrics"} <= set(spec["paths"])
        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_predict_single_text_returns_all_labels_sorted_like_tei(server, names, reference):
    expected = reference[0].classify(TEXTS[0], top_k=None)
    with server.client() as client:
        response = client.post("/predict", json={"inputs": TEXTS[0], "model": names["text-classification"]})
    assert response.status_code == 200
    got = response.json()
    assert [p["label"] for p in got] == [p.label for p in expected]
    np.testing.assert_allclose([p["score"] for p in got], [p.score for p in expected], rtol=1e-5, atol=1e-6)
    assert got == sorted(got, key=lambda p: -p["score"])


def test_predict_list_and_raw_scores_follow_input_order(server, names, reference):
    model = reference[0]
    with server.client() as client:
        scores = client.post(f"/models/{names['text-classification']}/predict", json={"inputs": TEXTS}).json()
        raw = client.post("/predict", json={"inputs": TEXTS, "raw_scores": True,
                                            "model": names["text-classification"]}).json()
    assert len(scores) == len(raw) == len(TEXTS)
    expected = model.classify(TEXTS, top_k=None)
    logits = model.logits(TEXTS)
    labels = list(model.manifest.labels)
    for got, want, got_raw, row in zip(scores, expected, raw, logits, strict=True):
        assert [p["label"] for p in got] == [p.label for p in want]
        np.testing.assert_allclose([p["score"] for p in got], [p.score for p in want], rtol=1e-5, atol=1e-6)
        by_label = {p["label"]: p["score"] for p in got_raw}
        np.testing.assert_allclose([by_label[label] for label in labels], row, rtol=1e-5, atol=1e-5)


def test_tag_and_predict_on_ner_model_return_entities_with_offsets(server, names, reference):
    tagger = reference[1]
    name = names["token-classification"]
    with server.client() as client:
        for aggregation in ("simple", "none", "first"):
            got = client.post("/tag", json={"inputs": NER_TEXTS, "model": name, "aggregation": aggregation}).json()
            want = [[e.to_dict() for e in ents] for ents in tagger.tag(NER_TEXTS, aggregation=aggregation)]
            assert len(got) == len(NER_TEXTS)
            for text, entities, expected in zip(NER_TEXTS, got, want, strict=True):
                assert [(e["label"], e["start"], e["end"], e["text"]) for e in entities] == [
                    (e["label"], e["start"], e["end"], e["text"]) for e in expected]
                np.testing.assert_allclose([e["score"] for e in entities], [e["score"] for e in expected],
                                           rtol=1e-5, atol=1e-6)
                assert all(text[e["start"]:e["end"]] == e["text"] for e in entities)
        single = client.post(f"/models/{name}/predict", json={"inputs": NER_TEXTS[0]}).json()
        assert single == client.post(f"/models/{name}/tag", json={"inputs": NER_TEXTS[0]}).json()
        assert isinstance(single, list) and all("start" in e for e in single)


def test_several_models_need_a_name_and_unknown_ones_are_404(server, names):
    with server.client() as client:
        assert_error(client.post("/predict", json={"inputs": "x"}), 422, "Validation")
        body = assert_error(client.post("/predict", json={"inputs": "x", "model": "nope"}), 404, "NotFound")
        assert names["text-classification"] in body["error"]
        assert_error(client.post("/models/nope/predict", json={"inputs": "x"}), 404, "NotFound")
        assert_error(client.post("/tag", json={"inputs": "x", "model": names["text-classification"]}), 422)


@pytest.mark.parametrize(
    ("content", "status", "error_type"),
    [
        (b'{"inputs": ', 400, "Validation"),  # malformed JSON
        (b"\xff\xfe not utf-8", 400, "Validation"),
        (b'{"inputs": []}', 400, "Empty"),
        (b'{"inputs": 42}', 422, "Validation"),
        (b'{"inputs": ["ok", 7]}', 422, "Validation"),
        (b'{"inputs": [["pair", "of texts"]]}', 422, "Validation"),
        (b'{"inputs": null}', 422, "Validation"),
        (b'{"text": "missing inputs"}', 422, "Validation"),
        (b'{"inputs": "x", "raw_scores": "yes"}', 422, "Validation"),
        (b'{"inputs": "x", "truncate": 1}', 422, "Validation"),
        (b'{"inputs": "x", "model": 5}', 422, "Validation"),
        (b'["a list", "not an object"]', 422, "Validation"),
        (b'"just a string"', 422, "Validation"),
        (b"", 400, "Validation"),  # empty: no JSON at all, like malformed JSON
    ],
)
def test_bad_bodies_get_clear_4xx_json(server, names, content, status, error_type):
    with server.client() as client:
        response = client.post(f"/models/{names['text-classification']}/predict", content=content,
                               headers={"content-type": "application/json"})
    assert_error(response, status, error_type)


def test_wrong_content_type_method_and_route(server, names):
    with server.client() as client:
        path = f"/models/{names['text-classification']}/predict"
        assert_error(client.post(path, content=b'{"inputs": "x"}', headers={"content-type": "text/plain"}), 415)
        assert_error(client.get(path), 405, "MethodNotAllowed")
        assert_error(client.post("/nowhere", json={"inputs": "x"}), 404, "NotFound")
        assert_error(client.post("/tag", json={"inputs": "x", "model": names["token-classification"],
                                               "aggregation": "bogus"}), 422, "Validation")


def test_oversized_bodies_items_and_texts(server, names):
    name = names["text-classification"]
    path = f"/models/{name}/predict"
    with server.client() as client:
        big = json.dumps({"inputs": "가" * (MAX_BODY + 10)}).encode()
        assert_error(client.post(path, content=big, headers={"content-type": "application/json"}), 413,
                     "PayloadTooLarge")

        def chunks():  # no Content-Length: the cap must hold while the body streams in
            yield b'{"inputs": "'
            for _ in range(MAX_BODY // 1000 + 2):
                yield b"a" * 1000
            yield b'"}'

        assert_error(client.post(path, content=chunks(), headers={"content-type": "application/json"}), 413,
                     "PayloadTooLarge")
        assert_error(client.post(path, json={"inputs": ["x"] * (MAX_ITEMS + 1)}), 413, "PayloadTooLarge")
        assert client.post(path, json={"inputs": ["x"] * MAX_ITEMS}).status_code == 200
        long_text = "좋아요 " * (MAX_CHARS // 2)
        assert_error(client.post(path, json={"inputs": long_text, "truncate": False}), 413, "PayloadTooLarge")
        assert client.post(path, json={"inputs": long_text}).status_code == 200  # truncated by default


def test_truncate_false_refuses_texts_over_max_length_tokens(server, names, reference):
    max_length = reference[0].manifest.max_length
    text = " ".join(["가"] * (max_length + 5))  # one token per word, fewer characters than --max-text-chars
    assert len(text) <= MAX_CHARS
    with server.client() as client:
        path = f"/models/{names['text-classification']}/predict"
        body = assert_error(client.post(path, json={"inputs": text, "truncate": False}), 413, "PayloadTooLarge")
        assert str(max_length) in body["error"]
        truncated = client.post(path, json={"inputs": text}).json()
    want = reference[0].classify(text, top_k=None)
    np.testing.assert_allclose([p["score"] for p in truncated], [p.score for p in want], rtol=1e-5, atol=1e-6)


def test_lone_surrogate_escape_is_served(server, names):
    body = b'{"inputs": "bad \\ud800 surrogate"}'
    with server.client() as client:
        response = client.post(f"/models/{names['text-classification']}/predict", content=body,
                               headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


def test_metrics_count_requests_errors_and_batches(server, names):
    with server.client() as client:
        client.post("/predict", json={"inputs": "x", "model": names["text-classification"]})
        client.post("/predict", json={"inputs": [], "model": names["text-classification"]})
        text = client.get("/metrics").text
    assert 'kolite_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'kolite_errors_total{error_type="Empty",route="/predict"}' in text
    assert f'kolite_batch_size_items_count{{model="{names["text-classification"]}"}}' in text
    assert f'kolite_batch_size_tokens_bucket{{le="16.0",model="{names["text-classification"]}"}}' in text
    assert f'kolite_queue_size{{model="{names["token-classification"]}"}}' in text
    assert "kolite_request_duration_seconds_bucket" in text
    assert "kolite_ready 1.0" in text
