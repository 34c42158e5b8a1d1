"""The public API surface: exports, task dispatch, result types, thread safety."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import kolite
import numpy as np
import pytest
from kolite.api import TASK_MODELS
from kolite_export.catalogue import SEEDS


def test_public_names_are_exported():
    for name in kolite.__all__:
        assert getattr(kolite, name) is not None
    assert {"load", "Prediction", "Entity", "TextClassifier", "TokenClassifier", "KoliteError"} <= set(kolite.__all__)


@pytest.mark.parametrize("seed", list(SEEDS))
def test_load_returns_the_task_class_with_its_metadata(seed, tiny_artifact):
    folder = tiny_artifact(seed)
    model = kolite.load(folder)
    manifest = kolite.load_manifest(folder)
    assert type(model) is TASK_MODELS[manifest.task]
    assert model.manifest == manifest and model.labels == manifest.labels
    assert model.variant == manifest.variants[model.variant.name] and model.device == "cpu"
    assert model.artifact_dir == folder and repr(model).startswith(type(model).__name__)
    result = model.predict(["영화 최고", "별로"])
    assert len(result) == 2


def test_results_are_frozen_dataclasses():
    prediction = kolite.Prediction("positive", 0.9)
    entity = kolite.Entity("PS", 0.8, 0, 3, "홍길동")
    for value in (prediction, entity):
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.score = 0.1  # type: ignore[misc]
    assert entity.to_dict() == {"label": "PS", "score": 0.8, "start": 0, "end": 3, "text": "홍길동"}
    assert kolite.Entity("B-PS", 0.8, 0, 3, "홍길동", index=1).to_dict()["index"] == 1


def test_concurrent_calls_give_the_sequential_results(tiny_artifact):
    """The server calls one model from many threads."""
    classifier = kolite.load(tiny_artifact("000"), variant="fp32")
    tagger = kolite.load(tiny_artifact("004"), variant="fp32")
    texts = [("좋아요 " * n).strip() for n in range(1, 17)]
    expected_logits = classifier.logits(texts, batch_size=4)
    expected_tags = tagger.tag(texts, stride=8)
    with ThreadPoolExecutor(max_workers=4) as pool:
        logits = list(pool.map(lambda _: classifier.logits(texts, batch_size=4), range(8)))
        # different strides at once: each stride gets its own window tokenizer
        tags = list(pool.map(lambda s: tagger.tag(texts, stride=s), [8, 16] * 4))
    for result in logits:
        np.testing.assert_allclose(result, expected_logits, atol=1e-5)
    for stride, result in zip([8, 16] * 4, tags, strict=True):
        if stride == 8:
            assert [[(e.label, e.start, e.end) for e in r] for r in result] == [
                [(e.label, e.start, e.end) for e in r] for r in expected_tags
            ]
