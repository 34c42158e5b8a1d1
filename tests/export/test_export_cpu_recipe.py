"""The int8 and fp32-opt graphs are built without the fusions whose onnxruntime CPU kernels are slow
(benchmarks/results/levers.md); fp16, the CUDA variant, keeps every fusion."""

from __future__ import annotations

import pytest


@pytest.mark.torch
def test_cpu_variants_are_built_without_the_fusions_that_are_slow_on_cpu(standin_dir, shared_data, tmp_path):
    import onnx
    from kolite_export.exporter import ExportOptions, export
    from kolite_export.recipes import CPU_SLOW_FUSIONS

    out = tmp_path / "000"
    options = ExportOptions(variants=("fp32", "fp32-opt", "int8"), validation_size=32, shared=str(shared_data))
    manifest = export(standin_dir("000"), out, options).manifest

    def ops(variant: str) -> set[str]:
        return {node.op_type for node in onnx.load(str(out / manifest.variants[variant].file)).graph.node}

    int8 = manifest.variants["int8"]
    assert int8.passed and int8.recipe["base_graph"] == "fp32-opt-cpu"
    assert int8.recipe["skipped_fusions"] == list(CPU_SLOW_FUSIONS)
    assert not ops("int8") & set(CPU_SLOW_FUSIONS)
    assert {"QAttention", "LayerNormalization", "Gelu", "EmbedLayerNormalization"} <= ops("int8")
    assert not ops("fp32-opt") & set(CPU_SLOW_FUSIONS)
    assert manifest.variants["fp32-opt"].recipe["skipped_fusions"] == list(CPU_SLOW_FUSIONS)
