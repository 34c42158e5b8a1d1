"""An option that does not apply to the model's task is an error, never silently ignored (issue 21, item 7).

One check (``kolite.model.pick_options``, behind ``model.options``) serves every front end: Python raises
``InvalidInputError``, the CLI exits 2 with one line, the labeller refuses before any work, HTTP answers 422.
"""

from __future__ import annotations

import kolite
import pytest
from kolite.cli import main
from kolite.errors import InvalidInputError
from kolite.server.app import create_app
from kolite.server.config import ServerConfig
from server.live_server import assert_error, serve_in_thread

CLASSIFIER_ONLY = [{"top_k": 2}, {"function_to_apply": "none"}, {"long_text": "windows"}, {"pooling": "max"}]
TAGGER_ONLY = [{"aggregation": "first"}, {"ignore_labels": ["O"]}]


@pytest.fixture(scope="module")
def models(tiny_artifact):
    classifier, tagger = kolite.load(tiny_artifact("000")), kolite.load(tiny_artifact("004"))
    yield classifier, tagger
    classifier.close()
    tagger.close()


@pytest.mark.parametrize("option", CLASSIFIER_ONLY)
def test_a_tagger_refuses_classifier_options(models, option):
    with pytest.raises(InvalidInputError, match=f"{next(iter(option))} does not apply to token-classification"):
        models[1].predict("홍길동은 서울에 산다", **option)


@pytest.mark.parametrize("option", [*TAGGER_ONLY, {"topk": 2}])
def test_a_classifier_refuses_tagger_options_and_typos(models, option):
    with pytest.raises(InvalidInputError, match="does not apply to text-classification models; their options are"):
        models[0].predict("영화 최고", **option)


def test_shared_and_unset_options_still_work(models):
    classifier, tagger = models
    assert len(classifier.predict("영화 최고", top_k=None, stride=8, aggregation=None)) == len(classifier.labels)
    assert isinstance(tagger.predict("홍길동은 서울에 산다", stride=8, top_k=None), list)


@pytest.mark.parametrize(
    ("seed", "flags", "named"),
    [
        ("000", ["--aggregation", "first"], "aggregation"),
        ("004", ["--top-k", "2", "--long-text", "windows"], "long_text, top_k"),
        ("004", ["--function-to-apply", "none"], "function_to_apply"),
        ("004", ["--pooling", "max"], "pooling"),
    ],
)
def test_cli_predict_exits_2_with_one_line(tiny_artifact, capsys, seed, flags, named):
    assert main(["predict", str(tiny_artifact(seed)), "영화 최고", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{named} do" in err[0] and "not apply to" in err[0]


def test_cli_predict_defaults_still_work_for_both_tasks(tiny_artifact, capsys):
    assert main(["predict", str(tiny_artifact("000")), "영화 최고"]) == 0
    assert main(["predict", str(tiny_artifact("004")), "홍길동은 서울에 산다", "--aggregation", "first"]) == 0
    assert main(["predict", str(tiny_artifact("000")), "영화 최고", "--top-k", "all", "--long-text", "windows"]) == 0


def test_label_refuses_before_any_work(tiny_artifact, tmp_path, capsys):
    source = tmp_path / "in.tsv"
    source.write_text("document\n홍길동은 서울에 산다\n", encoding="utf-8")
    out = tmp_path / "out.tsv"
    args = ["label", str(source), "--model", str(tiny_artifact("004")), "--out", str(out), "--no-progress"]
    assert main([*args, "--long-text", "windows"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "long_text does not apply to token-classification" in err[-1]
    assert not out.exists() and not (tmp_path / "out.tsv.parts").exists()
    assert main(args) == 0  # no option given: the tagger labels


def test_http_answers_422(tiny_artifact):
    config = ServerConfig(artifacts=(tiny_artifact("000"), tiny_artifact("004")), warmup=False)
    with serve_in_thread(create_app(config)) as server, server.client() as client:
        models = {m["task"]: m["name"] for m in client.get("/models").json()["models"]}
        tagger, classifier = models["token-classification"], models["text-classification"]
        for body in ({"top_k": 2}, {"long_text": "windows"}, {"parameters": {"top_k": 2}}):
            response = client.post(f"/models/{tagger}/predict", json={"inputs": "홍길동", **body})
            assert "does not apply to token-classification" in assert_error(response, 422)["error"]
        response = client.post(f"/models/{classifier}/predict", json={"inputs": "영화", "aggregation": "first"})
        assert "aggregation does not apply" in assert_error(response, 422)["error"]
        assert client.post(f"/models/{tagger}/predict", json={"inputs": "홍길동"}).status_code == 200
        assert client.post(f"/models/{classifier}/predict", json={"inputs": "영화"}).status_code == 200
