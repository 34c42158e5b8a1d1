"""int8-static: calibrated constant activation scales make int8 logits independent of the batch a text rides in.

Dynamic int8 takes one activation scale over the whole padded batch (its logits move with the padding partners);
int8-static's must be bitwise the same alone, in mixed-length batches, in file-order chunks and at batch size 1.
"""

from __future__ import annotations

import kolite
import numpy as np
import pytest

TEXTS = [
    "영화 정말 재미있었다",
    "별로",
    "",  # [CLS][SEP] only
    "배우들 연기가 최고였고 음악도 좋았다 다시 보고 싶다 ㅋㅋㅋ 강추합니다!!",
    "이순신 장군은 1545년 서울 건천동에서 태어났다.",
    "ㅡㅡ 시간 아깝다",
    "처음 30분은 지루했지만 후반부 반전이 대단했다. 감독의 다음 작품이 기대된다.",
    "굿",
    "홍길동은 삼성전자에 다닌다",
    "기대 이하... 2점도 아깝다",
]


@pytest.fixture(autouse=True)
def _padded_calls_stay_whole(monkeypatch):
    """The runtime cuts a call of very different lengths into length groups (less padding); here every call must
    stay whole so that texts really share a padded batch with their partners."""
    from kolite.batching import CALL_OVERHEAD_TOKENS

    monkeypatch.setitem(CALL_OVERHEAD_TOKENS, "cpu", 10**9)


def _batchings(run, texts: list[str]) -> dict[str, list[np.ndarray]]:
    """The same texts, each run alone (the single-text fast path), in one length-bucketed call, in file-order
    chunks of 3 and next to a long padding partner."""
    long_partner = "아주 길고 긴 문장이 옆에 있으면 짧은 문장에는 패딩이 많이 붙는다 " * 4
    return {
        "alone": [run([text], 1)[0] for text in texts],
        "bucketed batch of 4": list(run(texts, 4)),
        "whole set in one batch": list(run(texts, len(texts))),
        "file-order chunks of 3": [row for i in range(0, len(texts), 3) for row in run(texts[i : i + 3], 3)],
        "beside a long text": [run([text, long_partner], 2)[0] for text in texts],
    }


def _assert_bitwise_same(results: dict[str, list[np.ndarray]]) -> None:
    reference = results["alone"]
    for name, rows in results.items():
        for i, (row, expected) in enumerate(zip(rows, reference, strict=True)):
            assert row.dtype == expected.dtype and row.shape == expected.shape, (name, i)
            assert np.array_equal(row, expected), f"{name}: text {i} differs by {np.abs(row - expected).max():.3g}"


@pytest.mark.parametrize("threads", [1, 2])
def test_classification_logits_are_bitwise_batch_invariant(tiny_artifact, threads):
    with kolite.load(tiny_artifact("000"), variant="int8-static", threads=threads) as model:
        _assert_bitwise_same(_batchings(lambda texts, size: model.logits(texts, batch_size=size), TEXTS))


def test_token_logits_are_bitwise_batch_invariant(tiny_artifact):
    with kolite.load(tiny_artifact("004"), variant="int8-static") as model:
        _assert_bitwise_same(_batchings(lambda texts, size: model.token_logits(texts, batch_size=size), TEXTS))


def test_dynamic_int8_is_not_batch_invariant(tiny_artifact):
    # Why int8-static exists: the dynamic variant's logits move with their padding partners.
    with kolite.load(tiny_artifact("000"), variant="int8") as model:
        results = _batchings(lambda texts, size: model.logits(texts, batch_size=size), TEXTS)
    alone, beside = np.stack(results["alone"]), np.stack(results["beside a long text"])
    assert not np.array_equal(alone, beside)


@pytest.mark.torch  # reads the graph with `onnx`
@pytest.mark.parametrize("seed", ["000", "004"])
def test_static_variant_passes_its_gate_and_records_its_recipe(tiny_artifact, seed):
    import onnx

    artifact = tiny_artifact(seed)
    manifest = kolite.load(artifact, variant="int8-static").manifest
    variant = manifest.variants["int8-static"]
    assert variant.status == "passed" and variant.precision == "int8"
    recipe = variant.recipe
    # Nothing failed the gate, so only the task's error-float nodes stay float (none for a classifier).
    assert recipe["method"] == "static-scales" and recipe["nodes_to_exclude"] == recipe["error_float_nodes"]
    expected_source = {"000": "nsmc-train:ratings_train.txt", "004": "texts not in the validation selection"}[seed]
    assert recipe["calibration_texts_used"] > 0 and expected_source in recipe["calibration_source"]
    assert recipe["cpu_family"] == manifest.validation["cpu_family"]
    assert recipe["cpu_features"] == list(variant.cpu_features)
    ops = [node.op_type for node in onnx.load(str(artifact / variant.file)).graph.node]
    assert "DynamicQuantizeLinear" not in ops and "DynamicQuantizeMatMul" not in ops
    assert ops.count("QuantizeLinear") == recipe["quantized_activations"] > 0
    assert "MatMulIntegerToFloat" in ops and "QAttention" in ops and "MatMulInteger" not in ops


@pytest.mark.torch
def test_excluded_nodes_stay_float_never_dynamic(standin_dir, tmp_path):
    import onnx
    from kolite_export.cpu import detect_cpu
    from kolite_export.layouts import load_checkpoint
    from kolite_export.onnx_export import export_fp32
    from kolite_export.static_int8 import build_int8_static
    from kolite_export.variants import BuildContext

    checkpoint = load_checkpoint(standin_dir("000"))
    export_fp32(checkpoint, tmp_path / "model.fp32.onnx")
    ctx = BuildContext(checkpoint, tmp_path, detect_cpu(), calibration_texts=tuple(t for t in TEXTS if t))
    base, _ = ctx.optimized(cpu_kernels=True)
    matmuls = [n.name for n in onnx.load(str(base)).graph.node if n.op_type == "MatMul"]
    excluded = (matmuls[0], matmuls[-1])
    recipe = build_int8_static(ctx, tmp_path / "static.onnx", exclude_nodes=excluded)
    nodes = onnx.load(str(tmp_path / "static.onnx")).graph.node
    assert recipe["nodes_to_exclude"] == list(excluded)
    assert recipe["calibration_texts_used"] == len(ctx.calibration_texts)
    assert {n.name for n in nodes if n.op_type == "MatMul"} == set(excluded)
    assert not any(n.op_type.startswith("Dynamic") for n in nodes)


def test_a_study_recipe_changes_only_the_ranges_and_keeps_the_exclusions(standin_dir, tmp_path):
    # kolite_bench.range_study builds export's graph with another range method: the recorded recipe says so, the
    # excluded nodes still stay float, and minmax ranges (every calibration value) are never narrower than a
    # percentile's.
    import dataclasses

    import onnx
    from kolite_export.cpu import detect_cpu
    from kolite_export.layouts import load_checkpoint
    from kolite_export.onnx_export import export_fp32
    from kolite_export.recipes import StaticScaleRecipe
    from kolite_export.static_int8 import build_int8_static
    from kolite_export.variants import BuildContext
    from onnx import numpy_helper

    checkpoint = load_checkpoint(standin_dir("000"))
    export_fp32(checkpoint, tmp_path / "model.fp32.onnx")
    ctx = BuildContext(checkpoint, tmp_path, detect_cpu(), calibration_texts=tuple(t for t in TEXTS if t))
    base, _ = ctx.optimized(cpu_kernels=True)
    excluded = (next(n.name for n in onnx.load(str(base)).graph.node if n.op_type == "MatMul"),)

    def scales(path):
        model = onnx.load(str(path))
        quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
        values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        return {n.input[0]: float(values[n.input[1]]) for n in quantize}, model

    study = dataclasses.replace(StaticScaleRecipe.for_cpu(ctx.cpu), percentile=90.0)
    narrowed = build_int8_static(ctx, tmp_path / "p90.onnx", excluded, study)
    full = dataclasses.replace(study, range_method="minmax")
    minmax = build_int8_static(ctx, tmp_path / "minmax.onnx", excluded, full)
    assert (narrowed["range_method"], narrowed["percentile"], minmax["range_method"]) == ("percentile", 90.0, "minmax")
    assert narrowed["nodes_to_exclude"] == minmax["nodes_to_exclude"] == list(excluded)
    (narrow, _), (wide, model) = scales(tmp_path / "p90.onnx"), scales(tmp_path / "minmax.onnx")
    assert narrow.keys() == wide.keys() and all(wide[t] >= narrow[t] for t in narrow)
    assert any(wide[t] > narrow[t] for t in narrow)
    assert {n.name for n in model.graph.node if n.op_type == "MatMul"} == set(excluded)


def test_static_scales_are_computed_as_dynamic_quantization_computes_them():
    import onnxruntime as ort
    from kolite_export.activation_ranges import uint8_params
    from onnx import TensorProto, helper

    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "scale", "zero"])
    graph = helper.make_graph(
        [node],
        "dql",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in [("q", 2, [None]), ("scale", 1, []), ("zero", 2, [])]],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for low, high in [(-3.7, 5.2), (0.0, 1.0), (-0.17, 12.5), (-8.0, -1.0), (0.25, 0.5)]:
        _, scale, zero = session.run(None, {"x": np.array([low, high], dtype=np.float32)})
        assert uint8_params(np.float32(low), np.float32(high)) == (scale, zero)


@pytest.mark.torch
def test_calibration_never_reads_the_validation_texts(shared_data):
    from kolite_export.calibration import calibration_texts
    from kolite_export.validation_data import load_validation_set

    for spec, size in [("nsmc", 256), ("klue-ner", 256), ("klue-ner", 2000), ("kote", None)]:
        validation = load_validation_set(spec, size, shared_data)
        calibration = calibration_texts(spec, validation, 300, shared_data)
        assert len(calibration.texts) == 300 and not set(validation.texts) & set(calibration.texts), spec
        assert "validation texts" not in calibration.source
