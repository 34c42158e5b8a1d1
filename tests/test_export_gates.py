"""The accuracy gates raise typed errors carrying their numbers; tokenizer parity catches a drifted tokenizer.json."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytestmark = pytest.mark.torch

SENTIMENT = SimpleNamespace(task="text-classification", labels=("negative", "positive"))
NER = SimpleNamespace(task="token-classification", labels=("O", "B-PS", "I-PS", "B-LC", "I-LC"))


def _data(n, labels=None):
    from kolite_export.validation_data import ValidationSet

    return ValidationSet("test", tuple(f"t{i}" for i in range(n)), labels)


def test_atol_gate_reports_the_max_difference():
    from kolite_export.errors import AtolError
    from kolite_export.validation import Gate, evaluate_gate

    ref = [np.array([0.0, 1.0]), np.array([2.0, -1.0])]
    out = [np.array([0.0, 1.0]), np.array([2.0, -1.0005])]
    with pytest.raises(AtolError) as info:
        evaluate_gate("fp32", Gate(atol=1e-4), SENTIMENT, ref, out, _data(2))
    assert info.value.numbers["max_abs_logit_diff"] == pytest.approx(5e-4, rel=1e-3)


def test_shape_gate():
    from kolite_export.errors import ShapeError
    from kolite_export.validation import Gate, evaluate_gate

    with pytest.raises(ShapeError):
        evaluate_gate("fp32", Gate(), SENTIMENT, [np.zeros(2)], [np.zeros(3)], _data(1))


def test_label_agreement_and_accuracy_delta():
    from kolite_export.errors import LabelAgreementError
    from kolite_export.validation import Gate, evaluate_gate

    ref = [np.array([1.0, 0.0])] * 50 + [np.array([0.0, 1.0])] * 50
    out = list(ref)
    out[0] = np.array([0.0, 1.0])  # one flip: 99% agreement
    gold = ("negative",) * 50 + ("positive",) * 50
    numbers = evaluate_gate("int8", Gate(min_label_agreement=0.99), SENTIMENT, ref, out, _data(100, gold))
    assert numbers["label_agreement"] == pytest.approx(0.99)
    assert numbers["accuracy_reference"] == 1.0 and numbers["delta_accuracy_pt"] == pytest.approx(-1.0)
    with pytest.raises(LabelAgreementError) as info:
        evaluate_gate("int8", Gate(min_label_agreement=0.995), SENTIMENT, ref, out, _data(100, gold))
    assert info.value.numbers["label_agreement"] == pytest.approx(0.99)


def test_entity_agreement_gate():
    from kolite_export.errors import EntityAgreementError
    from kolite_export.validation import Gate, evaluate_gate

    def logits(tags):  # one-hot logits over NER.labels, with [CLS]/[SEP] rows around
        rows = [NER.labels.index(t) for t in ["O", *tags, "O"]]
        return np.eye(len(NER.labels))[rows]

    ref = [logits(["B-PS", "I-PS", "O", "B-LC"])]
    out = [logits(["B-PS", "O", "O", "B-LC"])]  # the PS span is cut short
    with pytest.raises(EntityAgreementError) as info:
        evaluate_gate("int8", Gate(min_label_agreement=0.5, min_entity_agreement=0.9), NER, ref, out, _data(1))
    assert info.value.numbers["token_label_agreement"] == pytest.approx(0.75)
    assert info.value.numbers["entity_agreement"] == pytest.approx(0.5)


def test_tokenizer_parity_catches_a_drifted_tokenizer_json(standin_dir, tmp_path):
    from kolite_export.errors import TokenizerParityError
    from kolite_export.layouts import load_checkpoint
    from kolite_export.validation import check_tokenizer_parity
    from tokenizers import normalizers

    checkpoint = load_checkpoint(standin_dir("000"))
    texts = ("Netflix 영화 정말 좋아요", "배우 연기 최고")
    good = tmp_path / "good.json"
    checkpoint.tokenizer.backend_tokenizer.save(str(good))
    assert check_tokenizer_parity(good, checkpoint, texts)["mismatched"] == 0
    drifted = checkpoint.tokenizer.backend_tokenizer
    drifted.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.Lowercase()])
    bad = tmp_path / "bad.json"
    drifted.save(str(bad))
    with pytest.raises(TokenizerParityError) as info:
        check_tokenizer_parity(bad, load_checkpoint(standin_dir("000")), texts)
    assert info.value.numbers["mismatched"] >= 1
