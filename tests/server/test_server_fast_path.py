"""The plain predict path (``kolite.server.fast_predict``): plain bodies are answered below the FastAPI stack with
exactly the bytes the full path gives, every other body takes the full path, and the request middleware around
both still counts, identifies and admits every request."""

from __future__ import annotations

import json

import pytest
from live_server import assert_error, serve_subprocess

TEXTS = ["영화 정말 최고였어요", "별로", "", "이 영화는 시간 낭비였다 ㅋㅋ " * 3]
NER_TEXT = "홍길동은 서울에서 삼성전자에 다닌다"


@pytest.fixture(scope="module")
def server(artifacts):
    with serve_subprocess([artifacts["cls"], artifacts["ner"]], "--max-items", "4", "--max-text-chars", "300") as s:
        yield s


def _post(client, path, body, **headers):
    return client.post(path, content=json.dumps(body, ensure_ascii=False).encode(),
                       headers={"content-type": "application/json", **headers})


def _same(fast, full):
    """Status, headers and body equal, but for the request id each response carries (generated ids all have one
    length, so even an error body's length matches)."""
    assert fast.status_code == full.status_code, (fast.text, full.text)
    assert {k: v for k, v in fast.headers.items() if k not in ("x-request-id", "date")} == \
        {k: v for k, v in full.headers.items() if k not in ("x-request-id", "date")}
    if fast.status_code == 200:
        assert fast.content == full.content
    else:
        assert {**fast.json(), "request_id": ""} == {**full.json(), "request_id": ""}


@pytest.mark.parametrize("body", [
    {"inputs": TEXTS[0]},
    {"inputs": TEXTS},
    {"inputs": TEXTS[:2], "truncate": True},
    {"inputs": "", "model": None},
    {"inputs": []},  # empty list: 400 from infer, on both paths
    {"inputs": [*TEXTS, "다섯"]},  # over --max-items: 413
    {"inputs": "가" * 400, "truncate": False},  # over --max-text-chars: 413
    {"inputs": TEXTS[0], "model": "no-such-model"},  # 404
])
def test_a_plain_body_gets_the_full_paths_answer(server, artifacts, body):
    # ``raw_scores: false`` changes nothing in the answer but is not a plain field: that request takes the full
    # FastAPI path, so the two responses compare the two paths.
    with server.client() as client:
        if "model" not in body:
            body = {**body, "model": artifacts["cls"].name}
        for path in ("/predict", "/", "/invocations"):
            _same(_post(client, path, body), _post(client, path, {**body, "raw_scores": False}))
        named = f"/models/{artifacts['cls'].name}/predict"
        _same(_post(client, named, body), _post(client, named, {**body, "raw_scores": False}))


@pytest.mark.parametrize("path", ["/predict", "/tag", "/models/{ner}/tag", "/models/{ner}/predict"])
@pytest.mark.parametrize("inputs", [[NER_TEXT, ""], NER_TEXT, []])
def test_ner_models_answer_plain_predict_and_tag_bodies_as_the_full_path(server, artifacts, path, inputs):
    # ``ignore_labels: ["O"]`` is the default (same answer) but not a plain field: the full path.
    with server.client() as client:
        body = {"inputs": inputs, "model": artifacts["ner"].name}
        route = path.format(ner=artifacts["ner"].name)
        fast, full = _post(client, route, body), _post(client, route, {**body, "ignore_labels": ["O"]})
        _same(fast, full)
        if inputs:
            assert fast.status_code == 200


def test_tag_on_a_classifier_is_the_same_error_on_both_paths(server, artifacts):
    with server.client() as client:
        body = {"inputs": "좋다", "model": artifacts["cls"].name}
        for route in ("/tag", f"/models/{artifacts['cls'].name}/tag"):
            fast, full = _post(client, route, body), _post(client, route, {**body, "ignore_labels": ["O"]})
            assert_error(fast, 422)
            _same(fast, full)


def test_bodies_that_are_not_plain_keep_the_full_paths_errors(server, artifacts):
    with server.client() as client:
        name = artifacts["cls"].name
        assert_error(client.post("/predict", content=b"{not json", headers={"content-type": "application/json"}),
                     400, "Validation")
        assert_error(_post(client, "/predict", {"inputs": 5, "model": name}), 422)
        assert_error(_post(client, "/predict", {"inputs": ["ok", 5], "model": name}), 422)
        assert_error(_post(client, "/predict", {"inputs": "ok", "model": name, "truncate": "yes"}), 422)
        assert_error(client.post("/predict", content=b"", headers={"content-type": "application/json"}), 400)
        assert_error(_post(client, "/predict", {"inputs": "ok", "model": name, "top_k": "x"}), 422)
        assert_error(client.post("/predict", content=b'{"inputs": "ok"}', headers={"content-type": "text/plain"}),
                     415)
        assert client.get("/predict").status_code == 405


def test_fast_path_requests_are_counted_under_their_route_template(server, artifacts):
    with server.client() as client:
        name = artifacts["cls"].name
        assert _post(client, f"/models/{name}/predict", {"inputs": "좋다"}).status_code == 200
        assert _post(client, "/invocations", {"inputs": "좋다", "model": name}).status_code == 200
        assert _post(client, "/predict", {"inputs": [], "model": name}).status_code == 400
    text = server.metrics()
    assert 'kolite_requests_total{method="POST",route="/models/{name}/predict",status="200"}' in text
    assert 'kolite_requests_total{method="POST",route="/invocations",status="200"}' in text
    assert 'kolite_errors_total{error_type="Empty",route="/predict"}' in text


def test_plain_body_takes_exactly_the_three_fields_of_their_exact_types():
    from kolite.server.fast_predict import plain_body

    assert plain_body(b'{"inputs": "a"}') == {"inputs": "a"}
    assert plain_body('{"inputs": ["a", "나"], "model": "m", "truncate": false}'.encode()) is not None
    assert plain_body(b'{"inputs": "a", "model": null, "truncate": null}') is not None
    for raw in (b'"a"', b"[1]", b'{"inputs": 1}', b'{"inputs": ["a", 1]}', b'{"inputs": "a", "top_k": 1}',
                b'{"inputs": "a", "truncate": 1}', b'{"inputs": "a", "model": 1}', b'{"model": "m"}', b"{",
                b"", b'{"inputs": {"a": 1}}', b'{"inputs": null}'):
        assert plain_body(raw) is None, raw
