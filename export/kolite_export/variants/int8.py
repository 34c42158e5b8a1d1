"""int8: dynamic quantization (per-channel s8 weights, u8 activations scaled per call) of the fused graph built
without the fusions that are slow on CPU; MatMul and Attention become integer ops."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kolite_export.cpu import CpuFeatures
from kolite_export.gates import Gate
from kolite_export.recipes import DynamicQuantRecipe
from kolite_export.variants.context import BuildContext
from kolite_export.variants.spec import CPU, QuantizedScope, VariantSpec, register


def _base_graph(ctx: BuildContext, recipe: DynamicQuantRecipe) -> tuple[Path, dict[str, Any]]:
    if recipe.base_graph == "fp32":
        return ctx.fp32_path, {}
    path, optimized = ctx.optimized(cpu_kernels=recipe.base_graph == "fp32-opt-cpu")
    return path, {"fused_ops": optimized["fused_ops"], "skipped_fusions": optimized["skipped_fusions"]}


def build(ctx: BuildContext, target: Path, exclude_nodes: tuple[str, ...] = ()) -> dict[str, Any]:
    return quantize(ctx, target, DynamicQuantRecipe.for_cpu(ctx.cpu, nodes_to_exclude=tuple(exclude_nodes)))


def quantize(ctx: BuildContext, target: Path, recipe: DynamicQuantRecipe) -> dict[str, Any]:
    """The dynamic int8 graph of ``recipe`` (also the starting point of int8-static's constant scales)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    base, fusions = _base_graph(ctx, recipe)
    with _without_preprocessing_advice():
        quantize_dynamic(
            base,
            target,
            op_types_to_quantize=list(recipe.op_types),
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(recipe.nodes_to_exclude) or None,
            # Fused contrib ops defeat shape inference; their outputs are float.
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return {**recipe.to_dict(), **fusions}


@contextmanager
def _without_preprocessing_advice() -> Iterator[None]:
    """onnxruntime's quantizer advises, on the root logger and on every call, to pre-process the graph first; kolite
    quantizes a graph onnxruntime's transformer optimizer has already rewritten (and gates the result), so the line
    is only noise in ``kolite export``'s output."""
    advice = logging.Filter()
    advice.filter = lambda record: "pre-processing before quantization" not in record.getMessage()  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def quantized_scope(ctx: BuildContext) -> QuantizedScope:
    recipe = DynamicQuantRecipe.for_cpu(ctx.cpu)
    return QuantizedScope(_base_graph(ctx, recipe)[0], recipe.op_types, gemm_as_matmul=True)


def current_recipe(cpu: CpuFeatures) -> dict[str, Any]:
    return DynamicQuantRecipe.for_cpu(cpu).chosen_for_cpu()


SPEC = register(
    VariantSpec(
        name="int8",
        precision="int8",
        build=build,
        gate=Gate(min_label_agreement=0.99, min_entity_agreement=0.95),
        providers=CPU,
        rank=20,
        default=True,
        summary="dynamic quantization of the fused graph, per-channel, MatMul + Attention; reduce_range only on "
        "x86 without VNNI",
        current_recipe=current_recipe,
        quantized_scope=quantized_scope,
    )
)
