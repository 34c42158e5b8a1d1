"""The accuracy gates raise typed errors carrying their numbers; tokenizer parity catches a drifted tokenizer.json."""

from __future__ import annotations

import unicodedata
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


def test_wilson_lower_bound_is_what_the_data_support():
    from kolite_export.gates import wilson_lower_bound

    assert wilson_lower_bound(2000, 2000) == pytest.approx(0.99808, abs=1e-5)  # 100 % on 2,000: ≥ 99.8 %
    assert wilson_lower_bound(256, 256) == pytest.approx(0.98522, abs=1e-5)  # the old default could not show 99 %
    assert wilson_lower_bound(95, 100) == pytest.approx(0.88825, abs=1e-5)
    assert wilson_lower_bound(0, 10) == 0.0 and wilson_lower_bound(0, 0) == 0.0


def test_agreements_carry_their_lower_bound():
    from kolite_export.gates import wilson_lower_bound
    from kolite_export.validation import Gate, evaluate_gate

    ref = [np.array([1.0, 0.0])] * 200
    out = [np.array([0.0, 1.0])] * 2 + ref[2:]
    numbers = evaluate_gate("int8", Gate(), SENTIMENT, ref, out, _data(200))
    assert numbers["label_agreement"] == pytest.approx(0.99)
    assert numbers["label_agreement_low95"] == pytest.approx(wilson_lower_bound(198, 200))
    tokens = np.eye(len(NER.labels))[[0, 1, 2, 0]]
    numbers = evaluate_gate("int8", Gate(), NER, [tokens], [tokens], _data(1))
    assert numbers["token_label_agreement"] == 1.0
    assert numbers["token_label_agreement_low95"] == pytest.approx(wilson_lower_bound(2, 2))  # [CLS]/[SEP] dropped


def test_default_validation_sizes_follow_the_task():
    from kolite_export.exporter import ExportOptions

    assert ExportOptions().sample_size("text-classification") == 2000
    assert ExportOptions().sample_size("token-classification") == 1000
    assert ExportOptions(validation_size=0).sample_size("text-classification") is None  # the whole set
    assert ExportOptions(validation_size=64).sample_size("token-classification") == 64


def test_export_and_bench_read_the_same_records(shared_data):
    """One reader per data set: export validates on the bench's texts minus the empty ones."""
    from kolite_bench.datasets import load_dataset
    from kolite_export.calibration import calibration_texts
    from kolite_export.validation_data import load_validation_set

    for name, size, non_empty in (("nsmc", 50_000, 49_997), ("kote", 5_000, 5_000), ("klue-ner", 5_000, 5_000)):
        bench = load_dataset(name, shared_data / "data")
        whole = load_validation_set(name, None, shared_data)
        assert len(bench.texts) == size and len(whole.texts) == non_empty
        # NFC, as the runtime feeds them (NSMC has 4 reviews with CJK compatibility ideographs NFC maps)
        assert list(whole.texts) == [unicodedata.normalize("NFC", t) for t in bench.texts if t.strip()]
    sample = load_validation_set("nsmc", 2000, shared_data)
    assert len(sample.texts) == 2000 and sample.labels is not None
    calibration = calibration_texts("nsmc", sample, 512, shared=shared_data)
    assert len(calibration.texts) == 512 and not set(calibration.texts) & set(sample.texts)
    assert calibration.source == "nsmc-train:ratings_train.txt"
