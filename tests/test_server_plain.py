"""The plain /predict path (``kolite.server.plain``): exactly the plain bodies take it, it answers what the full
FastAPI + pydantic path answers, and everything else still gets the full path's errors."""

from __future__ import annotations

import json

import pytest
from kolite.server.options import predict_options
from kolite.server.plain import PLAIN_OPTIONS, plain_body
from kolite.server.schemas import PredictRequest
from test_server_support import assert_error, serve_subprocess

JSON = "application/json"
TEXTS = ["영화 정말 최고였어요 배우들 연기가 대단함", "별로", "", "긴 리뷰 " * 300]


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": "재밌다"},
        {"inputs": ["재밌다", "", "별로"]},
        {"inputs": [], "model": "m", "truncate": False},
        {"inputs": "x", "model": None, "truncate": None},
    ],
)
def test_plain_bodies_take_the_short_path(body):
    raw = json.dumps(body, ensure_ascii=False).encode()
    assert plain_body(raw, JSON) == body
    assert plain_body(raw, "application/json; charset=utf-8") == body


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b'{"inputs": "x", "raw_scores": true}', JSON),  # an option: full path
        (b'{"inputs": "x", "parameters": {"top_k": 1}}', JSON),
        (b'{"inputs": 42}', JSON),
        (b'{"inputs": ["x", 1]}', JSON),
        (b'{"inputs": "x", "truncate": "yes"}', JSON),
        (b'{"inputs": "x", "model": 3}', JSON),
        (b'{"model": "m"}', JSON),  # no inputs
        (b'["x"]', JSON),
        (b'{"inputs": "x"', JSON),  # invalid JSON
        (b"", JSON),
        (b'{"inputs": "x"}', "text/plain"),
        (b'{"inputs": "x"}', None),
        (b"\xff\xfe", JSON),
    ],
)
def test_everything_else_goes_the_full_way(raw, content_type):
    assert plain_body(raw, content_type) is None


def test_plain_options_are_what_the_full_path_gives_a_body_without_options():
    assert predict_options(PredictRequest(inputs="x")) == PLAIN_OPTIONS


@pytest.fixture(scope="module")
def server(tiny_artifact):
    with serve_subprocess([tiny_artifact("000")], "--max-items", "4", "--max-text-chars", "2000") as running:
        yield running


@pytest.mark.parametrize("route", ["/predict", "/", "/invocations", "/models/000/predict"])
def test_plain_and_full_paths_answer_the_same(server, route):
    """A body with an option at its default value takes the full path; the answers must be identical."""
    with server.client() as client:
        for inputs in [TEXTS[0], TEXTS[2], TEXTS[3], TEXTS[:3]]:
            plain = client.post(route, json={"inputs": inputs})
            full = client.post(route, json={"inputs": inputs, "raw_scores": False})
            assert plain.status_code == full.status_code == 200, (plain.text, full.text)
            assert plain.json() == full.json()


def test_plain_bodies_still_get_the_runtime_errors(server):
    with server.client() as client:
        assert_error(client.post("/predict", json={"inputs": []}), 400, "Empty")
        assert_error(client.post("/predict", json={"inputs": ["a"] * 5}), 413, "PayloadTooLarge")
        assert_error(client.post("/predict", json={"inputs": "x", "model": "nope"}), 404, "NotFound")
        assert_error(client.post("/predict", json={"inputs": "가" * 2001, "truncate": False}), 413, "PayloadTooLarge")
        assert_error(client.post("/predict", json={"inputs": 42}), 422, "Validation")  # the full path's message
