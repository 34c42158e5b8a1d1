"""Accuracy repair: an int8 variant that misses its gate keeps its most harmful quantized nodes in float until it
passes, records them, and says so when nothing under the float budget passes.

The tiny stand-ins' int8 passes the real gate, so the failure is forced: the int8 spec gets a test-only gate that
its fully quantized graph misses (max |Δlogit| below what the quantized graph reaches) but a graph with enough nodes
in float meets.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytestmark = pytest.mark.torch

SIZE = 48


def _export(standin, out, shared, **options):
    from kolite_export.exporter import ExportOptions, export

    defaults = {"variants": ("int8",), "validation_size": SIZE, "shared": str(shared), "force": True}
    return export(standin, out, ExportOptions(**{**defaults, **options}))


@pytest.fixture(scope="module")
def unrepaired(standin_dir, shared_data, tmp_path_factory):
    """The tiny 000 int8 as the plain recipe quantizes it (its gate passes)."""
    result = _export(standin_dir("000"), tmp_path_factory.mktemp("plain") / "art", shared_data)
    assert result.ok
    return result.manifest.variants["int8"]


def _strict_gate(monkeypatch, unrepaired, fraction):
    from kolite_export.gates import Gate
    from kolite_export.variants import VARIANTS

    atol = unrepaired.validation["max_abs_logit_diff"] * fraction
    monkeypatch.setitem(VARIANTS, "int8", replace(VARIANTS["int8"], gate=Gate(atol=atol)))
    return atol


def test_repair_makes_a_failing_int8_pass_and_records_its_float_nodes(
    standin_dir, shared_data, tmp_path, monkeypatch, unrepaired
):
    import onnx
    from kolite.manifest import load_manifest

    atol = _strict_gate(monkeypatch, unrepaired, 0.5)
    failed = _export(standin_dir("000"), tmp_path / "failed", shared_data, repair=False)
    assert not failed.ok and "max |Δlogit|" in failed.failures["int8"]

    result = _export(standin_dir("000"), tmp_path / "art", shared_data, max_float_fraction=1.0)
    assert result.ok, result.failures
    int8 = load_manifest(tmp_path / "art").variants["int8"]
    repair = int8.recipe["repair"]
    float_nodes = repair["float_nodes"]
    assert float_nodes and int8.recipe["nodes_to_exclude"] == float_nodes
    assert int8.validation["max_abs_logit_diff"] <= atol
    assert 0 < repair["float_weight_fraction"] <= 1 and repair["quantizable_nodes"] >= len(float_nodes)
    # The shipped graph keeps exactly those nodes in float (their names survive; quantized ones are renamed).
    graph = onnx.load(str(tmp_path / "art" / int8.file))
    names = {node.name for node in graph.graph.node}
    assert set(float_nodes) <= names
    assert int8.size_bytes > unrepaired.size_bytes  # float weights cost bytes


def test_repair_says_when_nothing_under_the_budget_passes(standin_dir, shared_data, tmp_path, monkeypatch, unrepaired):
    _strict_gate(monkeypatch, unrepaired, 1e-6)  # only an fp32 graph could meet it
    result = _export(standin_dir("000"), tmp_path / "art", shared_data, max_float_fraction=0.25)
    assert not result.ok
    message = result.failures["int8"]
    assert "max |Δlogit|" in message and "nothing that passes with at most 25%" in message
    assert result.manifest.variants["int8"].status == "failed"


@pytest.mark.parametrize("variant", ["int8", "int8-static"])
def test_splicing_nodes_equals_rebuilding_with_them_excluded(standin_dir, shared_data, tmp_path, variant):
    """Repair moves nodes between the float and the quantized graph instead of re-quantizing: nodes put back in
    float give the logits of a rebuild without them; one node quantized alone errs less than all of them."""
    from kolite_export.cpu import detect_cpu
    from kolite_export.float_swap import GraphSplicer
    from kolite_export.layouts import load_checkpoint
    from kolite_export.onnx_export import export_fp32
    from kolite_export.trial import cpu_session
    from kolite_export.validation import encode_set, onnx_outputs
    from kolite_export.validation_data import load_validation_set
    from kolite_export.variants import VARIANTS, BuildContext

    checkpoint = load_checkpoint(standin_dir("000"))
    calibration = load_validation_set("nsmc", 64, shared_data).texts
    ctx = BuildContext(checkpoint, tmp_path, detect_cpu(), calibration_texts=calibration)
    export_fp32(checkpoint, ctx.fp32_path)
    spec = VARIANTS[variant]
    scope = spec.quantized_scope(ctx)
    nodes = list(scope.nodes())
    spec.build(ctx, tmp_path / "all.onnx")
    splicer = GraphSplicer.open(tmp_path / "all.onnx", scope.graph, scope.op_types)
    encoded = encode_set(checkpoint, ("영화 정말 재밌어요", "별로", "배우 연기가 최고였고 음악도 좋았다"))

    def logits(graph):
        return np.stack(onnx_outputs(cpu_session(graph), checkpoint, encoded))

    for excluded in (nodes[:2], nodes):  # for int8 a MatMul and an Attention; then every quantized node
        spec.build(ctx, tmp_path / "rebuilt.onnx", tuple(excluded))
        np.testing.assert_allclose(logits(splicer.with_float(excluded)), logits(tmp_path / "rebuilt.onnx"), atol=1e-5)
    floating = logits(scope.graph)
    alone = logits(splicer.quantized_alone(nodes[-1]))
    assert 0 < np.abs(alone - floating).max() <= np.abs(logits(tmp_path / "all.onnx") - floating).max()


def test_the_ranking_subset_is_the_flipped_texts_then_the_nearest_to_flipping():
    from kolite_export.repair import MIN_SUBSET, ranking_rows

    reference = [np.array([1.0, 0.0])] * 100
    outputs = [np.array([1.0, 0.5 + i / 200]) for i in range(100)]  # margins 0.5 (text 0) down to 0.005 (99)
    outputs[10] = np.array([0.0, 1.0])  # flipped
    rows = ranking_rows(reference, outputs)
    assert len(rows) == MIN_SUBSET and 10 in rows and 99 in rows and 0 not in rows
    # Token classification: a sentence counts by its weakest token.
    tokens = [np.eye(3)[[0, 1, 2]] * 4 for _ in range(40)]
    noisy = [t.copy() for t in tokens]
    noisy[7][1] = [3.0, 2.0, 0.0]  # token 1 of sentence 7 flips to label 0
    assert 7 in ranking_rows(tokens, noisy)
