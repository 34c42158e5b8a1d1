"""Text classification (seeds 000-003): results equal the PyTorch original; batching, truncation, edge inputs."""

from __future__ import annotations

import json
import shutil

import kolite
import numpy as np
import pytest
from kolite.classification import sigmoid, softmax
from support import original_logits

CLASSIFIERS = ["000", "001", "002", "003"]
TEXTS = [
    "영화 정말 최고였어요 배우들 연기가 대단함",
    "별로",
    "",
    "   ",
    "이 영화는 시간 낭비였다. 다시는 안 본다!! ㅋㅋㅋ",
    "Mixed 한국어 and English 123 😀",
    "재미있다",
]


@pytest.mark.torch
@pytest.mark.parametrize("seed", CLASSIFIERS)
def test_fp32_matches_pytorch_original(seed, tiny_artifact, standin_dir):
    model = kolite.load(tiny_artifact(seed), variant="fp32")
    expected = original_logits(standin_dir(seed), TEXTS, model.manifest.max_length)
    got = model.logits(TEXTS, batch_size=3)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    ranked = model.classify(TEXTS, top_k=None)
    for predictions, row in zip(ranked, softmax(expected.astype(np.float64)), strict=True):
        assert next(p.label for p in predictions) == model.labels[int(row.argmax())]
        assert sorted(p.score for p in predictions) == pytest.approx(sorted(row), abs=1e-4)


@pytest.mark.parametrize("seed", CLASSIFIERS)
def test_auto_picks_int8_on_cpu_and_returns_probabilities(seed, tiny_artifact):
    model = kolite.load(tiny_artifact(seed))
    # batch-invariant int8 first, then dynamic int8 (the manifest's ranks)
    preferred = next(n for n in ("int8-static", "int8", "fp32-opt", "fp32") if n in model.manifest.passed_variants)
    assert model.variant.name == preferred
    scores = model.scores(TEXTS)
    assert scores.shape == (len(TEXTS), len(model.labels))
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    predictions = model.classify(TEXTS, top_k=2)
    assert all(len(p) == min(2, len(model.labels)) and p[0].score >= p[-1].score for p in predictions)


def test_bucketing_keeps_input_order_and_equals_unbatched(tiny_artifact):
    model = kolite.load(tiny_artifact("000"), variant="fp32")
    texts = [("좋아요 " * n).strip() for n in (1, 30, 2, 60, 5, 0, 45, 3)]
    bucketed = model.logits(texts, batch_size=3)
    one_by_one = np.stack([model.logits([t], batch_size=1)[0] for t in texts])
    np.testing.assert_allclose(bucketed, one_by_one, atol=1e-5)
    reversed_order = model.logits(texts[::-1], batch_size=3)[::-1]
    np.testing.assert_allclose(reversed_order, bucketed, atol=1e-5)


def test_huge_text_is_truncated_to_max_length(tiny_artifact):
    model = kolite.load(tiny_artifact("000"), variant="fp32")
    huge = "영화 정말 최고 재미있다 " * 80_000
    assert len(huge.encode("utf-8")) > 1_000_000
    encoded = model.encoder.encode([huge])
    assert len(encoded.sequences[0]) == model.manifest.max_length and encoded.truncated == (True,)
    # Long texts are cut at a whitespace before tokenising; the tokens must equal those of the uncut text.
    longer = huge[: model.manifest.max_length * 40]
    assert model.encoder.encode([longer]).sequences[0] == model.encoder.tokenizer.encode(longer).ids
    # The model sees only the first max_length tokens, so any prefix longer than that gives the same answer.
    np.testing.assert_allclose(model.logits([huge]), model.logits([huge[:5000]]), atol=1e-5)


def test_empty_and_whitespace_texts_classify_as_cls_sep(tiny_artifact):
    model = kolite.load(tiny_artifact("000"), variant="fp32")
    encoded = model.encoder.encode(["", "   ", "\n\t "])
    assert all(len(ids) == model.encoder.num_special_tokens for ids in encoded.sequences)
    assert encoded.truncated == (False, False, False)
    logits = model.logits(["", "   ", "\n\t "])
    np.testing.assert_allclose(logits, np.repeat(logits[:1], 3, axis=0), atol=1e-6)


def test_single_string_and_top_k(tiny_artifact):
    model = kolite.load(tiny_artifact("002"), variant="fp32")
    single = model.classify("기분이 좋다", top_k=None)
    assert [p.label for p in single] != [] and sorted(p.label for p in single) == sorted(model.labels)
    assert single[0].to_dict() == {"label": single[0].label, "score": single[0].score}
    assert len(model.classify("기분이 좋다", top_k=100)) == len(model.labels)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(kolite.InvalidInputError):
            model.classify("x", top_k=bad)


def test_lone_surrogates_are_replaced_not_fatal(tiny_artifact):
    model = kolite.load(tiny_artifact("000"), variant="fp32")
    np.testing.assert_allclose(model.logits(["\ud800좋다\udfff"]), model.logits(["\ufffd좋다\ufffd"]), atol=1e-6)


def test_multi_label_manifest_uses_sigmoid(tiny_artifact, tmp_path):
    folder = shutil.copytree(tiny_artifact("002"), tmp_path / "multi")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["problem_type"] = "multi_label_classification"
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    model = kolite.load(folder, variant="fp32")
    np.testing.assert_allclose(model.scores(TEXTS), sigmoid(model.logits(TEXTS)), atol=1e-6)


def test_predict_dispatches_to_classify(tiny_artifact):
    with kolite.load(tiny_artifact("000"), variant="fp32") as model:
        assert model.predict(["좋다"], top_k=None) == model.classify(["좋다"], top_k=None)
