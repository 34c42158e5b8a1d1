"""Generic transformers checkpoints (BERT, RoBERTa, XLM-R, ELECTRA, DeBERTa-v2): ``kolite export FOLDER`` writes
an artifact whose every variant passes its gate, and the runtime answers like the PyTorch model; the seed layouts
still win for the seeds' folders; what no layout supports fails with one clear error."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from support import transformers_logits
from tiny_hf import CASES, build_tiny_checkpoint

pytestmark = pytest.mark.torch

VARIANTS = ("fp32", "fp32-opt", "int8")
# Texts the gates never saw, of mixed lengths (batches are padded); the last is longer than RoBERTa's 64 positions.
TEXTS = [
    "홍길동은 서울에서 태어나 2019년에 부산으로 이사했다.",
    "최고",
    "배송이 너무 늦어서 화가 났어요 ㅠㅠ 다시는 안 삽니다",
    " ".join(["이 영화는 배우들의 연기가 정말 훌륭했고 음악도 좋았지만 결말이 아쉬웠다."] * 6),
]


@dataclass(frozen=True)
class Expected:
    layout: str
    inputs: tuple[str, ...]
    max_length: int
    pad_token_id: int
    fused_attention: int  # Attention nodes in fp32-opt: 2 layers, or 0 where onnxruntime has no fusion


WITH_SEGMENTS = ("input_ids", "attention_mask", "token_type_ids")
NO_SEGMENTS = ("input_ids", "attention_mask")
EXPECTED = {
    "bert": Expected("hf-generic", WITH_SEGMENTS, 512, 0, 2),  # tokenizer sets no limit: 512 positions
    "roberta": Expected("hf-generic", NO_SEGMENTS, 64, 1, 2),  # 66 positions less pad id 1 + 1
    "xlm-roberta": Expected("hf-generic", NO_SEGMENTS, 128, 1, 2),
    "electra": Expected("electra-sequence-classification", WITH_SEGMENTS, 128, 0, 2),  # the seed layout wins
    "deberta-v2": Expected("hf-generic", NO_SEGMENTS, 128, 0, 0),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, shared_data):
    """``exported(name) -> (checkpoint folder, artifact folder)``, built and exported through the CLI once."""
    from kolite.cli import main

    built: dict[str, tuple[Path, Path]] = {}

    def get(name: str) -> tuple[Path, Path]:
        if name not in built:
            root = tmp_path_factory.mktemp(name)
            corpus = shared_data / "data" / "nsmc" / "ratings_train.txt"
            folder = build_tiny_checkpoint(CASES[name], corpus, root / "checkpoint")
            out = root / "artifact"
            argv = ["export", str(folder), "--out", str(out), "--variants", ",".join(VARIANTS)]
            code = main([*argv, "--validation-size", "32", "--shared", str(shared_data)])
            assert code == 0, f"kolite export {name} exited {code}"
            built[name] = (folder, out)
        return built[name]

    return get


@pytest.mark.parametrize("name", list(CASES))
def test_export_gates_and_manifest(exported, name):
    import onnxruntime as ort
    from kolite.manifest import load_manifest

    case, expected = CASES[name], EXPECTED[name]
    _, out = exported(name)
    manifest = load_manifest(out)
    assert manifest.source["layout"] == expected.layout
    assert manifest.task == case.task
    assert manifest.labels == (case.labels or tuple(f"LABEL_{i}" for i in range(case.num_labels)))
    assert manifest.problem_type == (case.problem_type or "single_label_classification")
    assert (manifest.inputs, manifest.max_length, manifest.pad_token_id) == (
        expected.inputs,
        expected.max_length,
        expected.pad_token_id,
    )
    assert set(manifest.variants) == set(VARIANTS)
    assert all(v.status == "passed" for v in manifest.variants.values())
    assert manifest.variants["fp32"].validation["max_abs_logit_diff"] <= 1e-4
    assert manifest.variants["fp32-opt"].recipe["fused_ops"].get("Attention", 0) == expected.fused_attention
    # the optimizer found the family's layers (LayerNorm + Gelu fused) and, on CPU, left out the slow fusions
    fused = manifest.variants["fp32-opt"].recipe["fused_ops"]
    assert fused.get("LayerNormalization", 0) > 0 and fused.get("Gelu", 0) > 0
    assert "SkipLayerNormalization" in manifest.variants["fp32-opt"].recipe["skipped_fusions"]
    for variant in manifest.variants.values():
        session = ort.InferenceSession(str(out / variant.file), providers=["CPUExecutionProvider"])
        assert tuple(i.name for i in session.get_inputs()) == manifest.inputs


@pytest.mark.parametrize("name", list(CASES))
def test_runtime_answers_like_pytorch(exported, name):
    import kolite
    import torch

    case = CASES[name]
    folder, out = exported(name)
    model = kolite.load(out, variant="fp32")
    try:
        reference, lengths = transformers_logits(folder, TEXTS, model.manifest.max_length, case.model_class)
        if case.task == "text-classification":
            np.testing.assert_allclose(model.logits(TEXTS), reference, atol=1e-4, rtol=0)
            logits = torch.from_numpy(reference)
            multi_label = case.problem_type == "multi_label_classification"
            expected_scores = torch.sigmoid(logits) if multi_label else torch.softmax(logits, -1)
            np.testing.assert_allclose(model.scores(TEXTS), expected_scores.numpy(), atol=1e-5, rtol=0)
            top = [predictions[0].label for predictions in model.classify(TEXTS)]
            assert top == [model.labels[i] for i in reference.argmax(-1)]
        else:
            per_text = model.token_logits(TEXTS)
            for logits, ref, n in zip(per_text, reference, lengths, strict=True):
                np.testing.assert_allclose(logits, ref[:n], atol=1e-4, rtol=0)
            # tag() splits a long text into windows (nothing cut): compare the texts that fit one window.
            fits = [i for i, n in enumerate(lengths) if n < model.manifest.max_length]
            tagged = model.tag([TEXTS[i] for i in fits], aggregation="none")
            for entities, ref in zip(tagged, reference[fits], strict=True):
                assert [e.label for e in entities] == [model.labels[ref[e.index].argmax()] for e in entities]
                assert all(e.label != "O" for e in entities)
            assert sum(len(entities) for entities in tagged) > 0  # the head tags something, not only "O"
    finally:
        model.close()
    served = kolite.load(out)  # auto: the int8 graph, which passed its gate
    try:
        assert served.variant.name == "int8"
        results = served.classify(TEXTS) if case.task == "text-classification" else served.tag(TEXTS)
        assert len(results) == len(TEXTS)
    finally:
        served.close()


def _stand_in_layout(folder: Path) -> str:
    return json.loads((folder / "standin.json").read_text(encoding="utf-8"))["layout"]


def test_seed_folders_keep_their_seed_layouts_whatever_the_registration_order(standin_dir, monkeypatch):
    from kolite_export.layouts import LAYOUTS, detect_layout

    folders = [standin_dir(seed) for seed in ("000", "001", "002", "003", "004")]
    # The generic layout would take the ELECTRA seeds too: precedence, not luck, gives them their seed layout.
    assert sum(LAYOUTS["hf-generic"].detect(folder) for folder in folders) == 4
    for order in (list(LAYOUTS.items()), list(reversed(LAYOUTS.items()))):
        monkeypatch.setattr("kolite_export.layouts.base.LAYOUTS", dict(order))
        assert [detect_layout(folder).name for folder in folders] == [_stand_in_layout(f) for f in folders]


def test_generic_and_seed_electra_layouts_read_a_checkpoint_alike(exported):
    from kolite_export.layouts import LAYOUTS

    folder, _ = exported("electra")
    seed, generic = LAYOUTS["electra-sequence-classification"].load(folder), LAYOUTS["hf-generic"].load(folder)
    fields = ("task", "labels", "inputs", "max_length", "problem_type", "optimizer_model_type", "pad_token_id")
    assert [getattr(seed, f) for f in fields] == [getattr(generic, f) for f in fields]


def _config_folder(tmp_path: Path, config: dict) -> Path:
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"\x00" * 16)
    return folder


@pytest.mark.parametrize(
    "config",
    [
        {"model_type": "gpt2", "architectures": ["GPT2ForSequenceClassification"]},  # no such family here
        {"model_type": "bert", "architectures": ["BertForMaskedLM"]},  # a family, but no classifier head
    ],
)
def test_unknown_architecture_fails_with_one_clear_line(tmp_path, capsys, config):
    from kolite.cli import main
    from kolite_export.errors import UnknownLayoutError
    from kolite_export.layouts import detect_layout

    folder = _config_folder(tmp_path, config)
    with pytest.raises(UnknownLayoutError, match=r"no known checkpoint layout.*hf-generic"):
        detect_layout(folder)
    out = tmp_path / "art"
    assert main(["export", str(folder), "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[kolite export]")]
    assert len(errors) == 1 and "no known checkpoint layout" in errors[0] and "config.json" in errors[0]
    assert not out.exists()


def _edited_copy(folder: Path, tmp_path: Path, **changes: object) -> Path:
    copy = tmp_path / "edited"
    shutil.copytree(folder, copy)
    config = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    (copy / "config.json").write_text(json.dumps({**config, **changes}), encoding="utf-8")
    return copy


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        ("roberta", {"pad_token_id": 0}, "derives position ids from the pad id"),
        ("bert", {"problem_type": "regression"}, "problem_type 'regression' is not supported"),
    ],
)
def test_checkpoints_kolite_cannot_serve_faithfully_are_refused(exported, tmp_path, name, changes, message):
    from kolite_export.errors import CheckpointError
    from kolite_export.layouts import load_checkpoint

    folder, _ = exported(name)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(_edited_copy(folder, tmp_path, **changes))


def test_sentencepiece_conversion_without_its_packages_says_what_to_install(exported, monkeypatch):
    from kolite_export.errors import TokenizerMissingError
    from kolite_export.layouts import load_checkpoint

    folder, _ = exported("deberta-v2")  # spm.model and no tokenizer.json, like mDeBERTa on the hub
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # as if it were not installed
    with pytest.raises(TokenizerMissingError, match=r"spm\.model.*needs sentencepiece.*kolite\[export\]"):
        load_checkpoint(folder)
