"""Token classification (seed 004): tag() equals transformers' token-classification pipeline, long texts whole."""

from __future__ import annotations

import itertools
import json
import shutil

import kolite
import numpy as np
import pytest
from kolite.aggregation import AGGREGATIONS

SHORT = [
    "홍길동은 서울에 산다",
    "삼성전자는 2024년 3월 15일 수원에서 신제품을 발표했다.",
    "",
    "   ",
    "ABC회사 김철수 대표 😀 ㅋㅋ",
]


@pytest.fixture(scope="module")
def ner_artifact(tiny_artifact, tmp_path_factory):
    """Seed 004 with a 64-token window: long texts span many windows while staying cheap on 2 cores."""
    folder = shutil.copytree(tiny_artifact("004"), tmp_path_factory.mktemp("ner") / "004")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["max_length"] = 64
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return folder


def full_tokenization(model: kolite.TokenClassifier, text: str):
    """The whole text's tokens, without the model's truncation."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model.artifact_dir / model.manifest.tokenizer.file))
    tokenizer.no_truncation()
    return tokenizer.encode(text, add_special_tokens=False)


def long_text(model: kolite.TokenClassifier) -> str:
    """About three windows of tokens, so the stride windows and their merge are exercised."""
    words = ["이순신", "장군은", "1545년", "한양에서", "태어나", "조선", "수군을", "이끌었다", "부산", "앞바다"]
    text = " ".join(words[i % len(words)] for i in range(3 * model.manifest.max_length))
    assert len(full_tokenization(model, text).ids) > 3 * model.manifest.max_length
    return text


def reference_pipeline(standin, model: kolite.TokenClassifier, strategy: str):
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(standin)
    tokenizer.model_max_length = model.manifest.max_length  # the window the artifact was exported for
    module = AutoModelForTokenClassification.from_pretrained(standin).eval()
    return pipeline("token-classification", model=module, tokenizer=tokenizer, aggregation_strategy=strategy)


def assert_same(expected: list[dict], got: list[kolite.Entity], text: str, strategy: str) -> None:
    key = "entity" if strategy == "none" else "entity_group"
    assert [(e[key], e["start"], e["end"]) for e in expected] == [(e.label, e.start, e.end) for e in got]
    assert [float(e["score"]) for e in expected] == pytest.approx([e.score for e in got], abs=1e-4)
    assert all(e.text == text[e.start : e.end] for e in got)
    if strategy == "none":
        assert [e["index"] for e in expected] == [e.index for e in got]


@pytest.mark.torch
@pytest.mark.parametrize("strategy", AGGREGATIONS)
def test_tag_matches_transformers_pipeline(strategy, ner_artifact, standin_dir):
    model = kolite.load(ner_artifact, variant="fp32")
    ner = reference_pipeline(standin_dir("004"), model, strategy)
    for text, got in zip(SHORT, model.tag(SHORT, aggregation=strategy, batch_size=2), strict=True):
        assert_same(ner(text), got, text, strategy)
    if strategy != "none":  # the pipeline refuses stride with "none"; see test_none_on_long_text_...
        text = long_text(model)
        stride = model.default_stride()
        assert_same(ner(text, stride=stride), model.tag(text, aggregation=strategy, stride=stride), text, strategy)


def test_none_on_long_text_returns_every_token_once(ner_artifact):
    model = kolite.load(ner_artifact)
    text = long_text(model)
    tokens = full_tokenization(model, text)
    entities = model.tag(text, aggregation="none", ignore_labels=())
    assert [(e.start, e.end) for e in entities] == [tuple(o) for o in tokens.offsets]
    assert [e.index for e in entities] == list(range(1, len(tokens.ids) + 1))


@pytest.mark.parametrize("strategy", [s for s in AGGREGATIONS if s != "none"])
def test_long_text_is_not_cut(strategy, ner_artifact):
    model = kolite.load(ner_artifact)
    text = long_text(model)
    offsets = full_tokenization(model, text).offsets
    entities = model.tag(text, aggregation=strategy, ignore_labels=())
    # Windows past the first (and second) contributed: truncation would stop at the first window's last token.
    assert entities[-1].end > offsets[2 * model.encoder.window_capacity][1]
    assert all(a.end <= b.start for a, b in itertools.pairwise(entities))


def test_offsets_point_into_the_original_string_with_lone_surrogates(ner_artifact):
    model = kolite.load(ner_artifact)
    text = "\ud800 홍길동은 \udfff서울에 산다"
    entities = model.tag(text, aggregation="none", ignore_labels=())
    clean = model.tag(
        text.replace("\ud800", "\ufffd").replace("\udfff", "\ufffd"), aggregation="none", ignore_labels=()
    )
    assert [(e.start, e.end, e.label) for e in entities] == [(e.start, e.end, e.label) for e in clean]
    assert all(e.text == text[e.start : e.end] for e in entities)


def test_batching_and_order_do_not_change_tags(ner_artifact):
    model = kolite.load(ner_artifact, variant="fp32")
    texts = [*SHORT, long_text(model)]
    together = model.tag(texts, aggregation="simple", batch_size=3)
    alone = [model.tag(t, aggregation="simple", batch_size=1) for t in texts]
    for a, b in zip(together, alone, strict=True):
        assert [(e.label, e.start, e.end) for e in a] == [(e.label, e.start, e.end) for e in b]
        np.testing.assert_allclose([e.score for e in a], [e.score for e in b], atol=1e-5)


def test_empty_and_whitespace_have_no_entities(ner_artifact):
    model = kolite.load(ner_artifact)
    assert model.tag(["", "  \t"], ignore_labels=()) == [[], []]


def test_bad_aggregation_and_stride(ner_artifact):
    model = kolite.load(ner_artifact)
    with pytest.raises(kolite.InvalidInputError, match="aggregation"):
        model.tag("x", aggregation="mean")
    capacity = model.encoder.window_capacity
    for stride in (-1, capacity, 2.5):
        with pytest.raises(kolite.InvalidInputError, match="stride"):
            model.tag("x", stride=stride)


def test_predict_dispatches_to_tag_and_entities_serialise(ner_artifact):
    model = kolite.load(ner_artifact)
    (entities,) = model.predict(["홍길동은 서울에 산다"], aggregation="none")
    assert entities == model.tag("홍길동은 서울에 산다", aggregation="none")
    assert all(set(e.to_dict()) == {"label", "score", "start", "end", "text", "index"} for e in entities)
    grouped = model.tag("홍길동은 서울에 산다", aggregation="simple", ignore_labels=())
    assert all("index" not in e.to_dict() and e.index is None for e in grouped)
