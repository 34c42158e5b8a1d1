"""Issue 15.1: the clients people already use, unmodified, against a real `kolite serve` (subprocess, free loopback
port): huggingface_hub's InferenceClient (text and token classification, each parameter checked against the
Python API's answer), TEI's routes `POST /` and `/invocations`, and the README's curl forms. Also issue 15.4's
long-text options on /predict."""

from __future__ import annotations

import json
import shutil
import subprocess

import kolite
import numpy as np
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from kolite.results import Prediction
from live_server import assert_error, serve_subprocess

TEXT = "영화 정말 최고였어요 배우들 연기가 대단함"
NER_TEXT = "홍길동은 서울에서 삼성전자에 다닌다. 2024년 3월 1일 부산 해운대에 갔다."


@pytest.fixture(autouse=True)
def _online_client(monkeypatch):
    """huggingface_hub refuses every HTTP request under HF_HUB_OFFLINE=1, even to a local server: lift it here."""
    from huggingface_hub import constants
    from huggingface_hub.utils import reset_sessions

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    reset_sessions()
    yield
    reset_sessions()


# fp32 on both sides: int8's dynamic quantization depends on what a text is batched with, which may differ.
@pytest.fixture(scope="module")
def classifier_server(artifacts):
    with serve_subprocess([artifacts["cls"]], "--variant", "fp32") as running:
        yield running


@pytest.fixture(scope="module")
def tagger_server(artifacts):
    with serve_subprocess([artifacts["ner"]], "--variant", "fp32") as running:
        yield running


@pytest.fixture(scope="module")
def classifier(artifacts):
    with kolite.load(artifacts["cls"], variant="fp32") as model:
        yield model


@pytest.fixture(scope="module")
def tagger(artifacts):
    with kolite.load(artifacts["ner"], variant="fp32") as model:
        yield model


def _same_predictions(got, want) -> None:
    assert [p.label for p in got] == [p.label for p in want]
    np.testing.assert_allclose([p.score for p in got], [p.score for p in want], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "parameters",
    [{}, {"top_k": 1}, {"top_k": 2, "function_to_apply": "sigmoid"}, {"function_to_apply": "none"},
     {"function_to_apply": "softmax"}],
)
def test_inference_client_text_classification(classifier_server, classifier, parameters):
    client = InferenceClient(base_url=classifier_server.url)
    got = client.text_classification(TEXT, **parameters)
    assert all(type(p).__name__ == "TextClassificationOutputElement" for p in got)
    # Without top_k the server answers every label, as TEI does (transformers' pipeline would give one).
    want = classifier.classify(TEXT, top_k=parameters.get("top_k"), **{
        k: v for k, v in parameters.items() if k != "top_k"})
    _same_predictions(got, want)
    assert 'kolite_requests_total{method="POST",route="/",status="200"}' in classifier_server.metrics()


@pytest.mark.parametrize(
    "parameters",
    [{}, {"aggregation_strategy": "none"}, {"aggregation_strategy": "first", "ignore_labels": []},
     {"aggregation_strategy": "max", "stride": 8, "ignore_labels": ["O", "PS"]},
     {"aggregation_strategy": "average", "ignore_labels": []}],
)
def test_inference_client_token_classification(tagger_server, tagger, parameters):
    client = InferenceClient(base_url=tagger_server.url)
    got = client.token_classification(NER_TEXT, **parameters)
    aggregation = parameters.get("aggregation_strategy", "simple")
    want = tagger.tag(NER_TEXT, aggregation=aggregation, stride=parameters.get("stride"),
                      ignore_labels=parameters.get("ignore_labels", ("O",)))
    assert len(got) == len(want)
    if parameters.get("ignore_labels") == []:
        assert want  # every token is in some entity ("O" ones included): the comparison is not vacuous
    for element, entity in zip(got, want, strict=True):
        assert type(element).__name__ == "TokenClassificationOutputElement"
        label = element.entity if aggregation == "none" else element.entity_group
        assert (label, element.word, element.start, element.end) == (entity.label, entity.text, entity.start,
                                                                       entity.end)
        assert NER_TEXT[element.start:element.end] == element.word
        np.testing.assert_allclose(element.score, entity.score, rtol=1e-5, atol=1e-6)


def test_inference_client_errors_are_raised_with_the_servers_message(classifier_server):
    client = InferenceClient(base_url=classifier_server.url)
    with pytest.raises(HfHubHTTPError) as caught:
        client.text_classification(TEXT, function_to_apply="bogus")
    assert caught.value.response.status_code == 422 and "function_to_apply" in caught.value.response.text


def test_root_and_invocations_are_predict_like_tei(classifier_server, classifier):
    with classifier_server.client() as client:
        predicted = client.post("/predict", json={"inputs": TEXT}).json()
        for route in ("/", "/invocations"):
            assert client.post(route, json={"inputs": TEXT}).json() == predicted
            assert client.post(route, json={"inputs": [TEXT, "별로"]}).json() == client.post(
                "/predict", json={"inputs": [TEXT, "별로"]}).json()
    _same_predictions([Prediction(**p) for p in predicted], classifier.classify(TEXT, top_k=None))


def test_several_models_at_the_root_get_a_422_naming_them(artifacts):
    with serve_subprocess([artifacts["cls"], artifacts["ner"]]) as server, server.client() as client:
        for route in ("/", "/invocations"):
            body = assert_error(client.post(route, json={"inputs": TEXT}), 422, "Validation")
            assert artifacts["cls"].name in body["error"] and artifacts["ner"].name in body["error"]
        assert client.post("/", json={"inputs": TEXT, "model": artifacts["cls"].name}).status_code == 200


def test_parameters_and_body_fields_are_one_set_of_options(classifier_server):
    with classifier_server.client() as client:
        assert client.post("/predict", json={"inputs": TEXT, "top_k": 1}).json() == client.post(
            "/predict", json={"inputs": TEXT, "parameters": {"top_k": 1}}).json()[0]
        assert_error(client.post("/predict", json={"inputs": TEXT, "top_k": 1, "parameters": {"top_k": 2}}), 422)
        assert_error(client.post("/predict", json={"inputs": TEXT, "raw_scores": True,
                                                   "function_to_apply": "softmax"}), 422)
        for bad in ({"top_k": 0}, {"long_text": "sideways"}, {"pooling": "median"}, {"stride": -1}):
            assert_error(client.post("/predict", json={"inputs": TEXT, **bad}), 422, "Validation")


@pytest.mark.parametrize("options", [{"long_text": "windows"}, {"long_text": "windows", "pooling": "max"},
                                     {"long_text": "windows", "pooling": "mean", "stride": 16},
                                     {"long_text": "truncate"}])
def test_predict_passes_long_text_options_to_the_model(classifier_server, classifier, options):
    text = " ".join(["재밌다", "지루하다", "배우", "연기"] * classifier.manifest.max_length)  # several windows
    assert len(classifier.encode([text], classifier.options(**options)).sequences) > (
        1 if options["long_text"] == "windows" else 0)
    with classifier_server.client() as client:
        got = client.post("/predict", json={"inputs": text, **options})
    assert got.status_code == 200, got.text
    _same_predictions([Prediction(**p) for p in got.json()], classifier.classify(text, top_k=None, **options))


@pytest.mark.skipif(shutil.which("curl") is None, reason="the curl forms need the curl program")
def test_readme_curl_forms(classifier_server, tagger_server, classifier, tagger):
    def curl(url: str, *args: str) -> object:
        result = subprocess.run(["curl", "-s", "--fail-with-body", url, *args], capture_output=True, text=True,
                                timeout=60, check=True)
        return json.loads(result.stdout)

    json_header = ("-H", "content-type: application/json")
    predicted = curl(f"{classifier_server.url}/predict", *json_header, "-d", json.dumps({"inputs": TEXT}))
    _same_predictions([Prediction(**p) for p in predicted], classifier.classify(TEXT, top_k=None))
    hf = curl(f"{classifier_server.url}/", *json_header,
              "-d", json.dumps({"inputs": TEXT, "parameters": {"top_k": 1}}))
    assert hf == [predicted[:1]]  # the Inference API's shape: one list per text
    tagged = curl(f"{tagger_server.url}/tag", *json_header,
                  "-d", json.dumps({"inputs": [NER_TEXT], "aggregation": "first", "ignore_labels": []}))
    want = tagger.tag(NER_TEXT, aggregation="first", ignore_labels=())
    assert [(e["label"], e["start"], e["end"], e["text"]) for e in tagged[0]] == [
        (e.label, e.start, e.end, e.text) for e in want]
    np.testing.assert_allclose([e["score"] for e in tagged[0]], [e.score for e in want], rtol=1e-5, atol=1e-6)
    assert curl(f"{classifier_server.url}/health")["status"] == "ok"
