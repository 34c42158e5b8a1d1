"""Export every seed layout (tiny stand-ins), validate, and reload every variant with onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from kolite_export.catalogue import SEEDS
from support import checkpoint_logits

pytestmark = pytest.mark.torch

SEED_IDS = tuple(SEEDS)
ALL_VARIANTS = ("fp32", "fp32-opt", "int8", "int8-static", "fp16")
# Texts the gates never saw: mixed lengths, so batches are padded.
FRESH_TEXTS = [
    "홍길동은 서울에서 태어나 2019년에 부산으로 이사했다.",
    "최고",
    "",
    "배송이 너무 늦어서 화가 났어요 ㅠㅠ 다시는 안 삽니다",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, standin_dir, shared_data):
    """All variants of every tiny stand-in, exported once for this module."""
    from kolite_export.exporter import ExportOptions, export

    root = tmp_path_factory.mktemp("export")
    results = {}
    for seed in SEED_IDS:
        options = ExportOptions(variants=ALL_VARIANTS, validation_size=48, shared=str(shared_data))
        results[seed] = export(standin_dir(seed), root / seed, options)
    return results


@pytest.mark.parametrize("seed", SEED_IDS)
def test_every_variant_passes_its_gate_and_reloads(exported, standin_dir, seed):
    import onnxruntime as ort
    from kolite.manifest import load_manifest
    from kolite_export.artifact import sha256_file
    from kolite_export.catalogue import get_seed
    from kolite_export.layouts import load_checkpoint

    result = exported[seed]
    assert result.ok, result.failures
    manifest = load_manifest(result.out)
    zoo = get_seed(seed)
    assert manifest.labels == zoo.labels and manifest.task == zoo.task
    assert set(manifest.variants) == set(ALL_VARIANTS)
    assert manifest.validation["tokenizer_parity"]["mismatched"] == 0
    checkpoint = load_checkpoint(standin_dir(seed))
    assert manifest.pad_token_id == checkpoint.tokenizer.pad_token_id
    feeds, reference = checkpoint_logits(checkpoint, FRESH_TEXTS)
    for variant in manifest.variants.values():
        path = result.out / variant.file
        assert sha256_file(path) == variant.sha256 and path.stat().st_size == variant.size_bytes
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert tuple(i.name for i in session.get_inputs()) == manifest.inputs
        assert all(i.type == "tensor(int64)" for i in session.get_inputs())
        logits = session.run(["logits"], feeds)[0]
        assert logits.shape == reference.shape  # batch 4 and a new sequence length: no baked dimensions
        if variant.precision == "fp32":
            np.testing.assert_allclose(logits, reference, atol=1e-4, rtol=0)
            assert variant.validation["max_abs_logit_diff"] <= 1e-4
        else:
            assert "label_agreement" in variant.validation or "token_label_agreement" in variant.validation
        assert variant.status == "passed"


def test_manifest_records_source_tools_and_recipes(exported):
    from kolite.manifest import load_manifest

    manifest = load_manifest(exported["000"].out)
    assert manifest.inputs == ("input_ids", "attention_mask", "token_type_ids")
    assert manifest.source["layout"] == "electra-sequence-classification" and len(manifest.source["fingerprint"]) == 64
    assert {"kolite", "torch", "onnxruntime", "onnx", "transformers", "opset"} <= set(manifest.tools)
    fused = manifest.variants["fp32-opt"].recipe["fused_ops"]
    assert fused.get("Attention") == 2 and "SkipLayerNormalization" not in fused  # 2 tiny layers; slow on CPU
    assert manifest.variants["fp16"].recipe["base"]["fused_ops"].get("SkipLayerNormalization", 0) > 0
    int8 = manifest.variants["int8"].recipe
    assert int8["method"] == "dynamic" and int8["cpu_family"] == manifest.validation["cpu_family"]
    assert manifest.variants["fp16"].providers == ("CUDAExecutionProvider",)
    assert manifest.variants["int8-static"].recipe["method"] == "static-scales"
    assert manifest.variants["int8"].validation["accuracy_reference"] is not None  # NSMC has labels


def test_token_classification_records_entity_agreement(exported):
    from kolite.manifest import load_manifest

    manifest = load_manifest(exported["004"].out)
    assert manifest.task == "token-classification" and len(manifest.labels) == 31
    for variant in manifest.variants.values():
        assert 0.0 <= variant.validation["entity_agreement"] <= 1.0
        assert variant.validation["token_label_agreement"] >= 0.99


def test_runtime_serves_the_exported_artifact_like_pytorch(exported, standin_dir):
    import kolite
    from kolite_export.layouts import load_checkpoint

    checkpoint = load_checkpoint(standin_dir("002"))
    texts = [t for t in FRESH_TEXTS if t]
    _, reference = checkpoint_logits(checkpoint, texts)
    model = kolite.load(exported["002"].out, variant="fp32")
    try:
        np.testing.assert_allclose(model.logits(texts), reference, atol=1e-4, rtol=0)
    finally:
        model.close()


def test_reexport_into_a_valid_artifact_is_skipped_unless_forced(standin_dir, tmp_path, shared_data):
    from kolite_export.exporter import ExportOptions, export

    options = ExportOptions(variants=("fp32",), validation_size=16, shared=str(shared_data))
    first = export(standin_dir("000"), tmp_path / "a", options)
    again = export(standin_dir("000"), tmp_path / "a", options)
    assert not first.skipped and again.skipped
    assert again.manifest == first.manifest
    (tmp_path / "a" / "model.fp32.onnx").write_bytes(b"tampered")
    repaired = export(standin_dir("000"), tmp_path / "a", options)
    assert not repaired.skipped  # a hash mismatch invalidates the cache
    forced = export(
        standin_dir("000"),
        tmp_path / "a",
        ExportOptions(variants=("fp32",), validation_size=16, shared=str(shared_data), force=True),
    )
    assert not forced.skipped


def test_reexport_rebuilds_an_int8_made_with_another_recipe(standin_dir, tmp_path, shared_data):
    import json

    from kolite_export.exporter import ExportOptions, export

    options = ExportOptions(variants=("fp32", "int8"), validation_size=16, shared=str(shared_data))
    first = export(standin_dir("000"), tmp_path / "a", options)
    assert export(standin_dir("000"), tmp_path / "a", options).skipped
    manifest_path = tmp_path / "a" / "manifest.json"
    data = json.loads(manifest_path.read_text(encoding="utf-8"))
    data["variants"]["int8"]["recipe"]["base_graph"] = "fp32"  # as an artifact from an older quantization recipe
    manifest_path.write_text(json.dumps(data), encoding="utf-8")
    rebuilt = export(standin_dir("000"), tmp_path / "a", options)
    assert not rebuilt.skipped
    current = first.manifest.variants["int8"].recipe["base_graph"]
    assert rebuilt.manifest.variants["int8"].recipe["base_graph"] == current
