"""int8-static: QDQ quantization of the plain fp32 graph, activation ranges calibrated on real texts that are not
the validation texts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kolite_export.cpu import CpuFeatures
from kolite_export.gates import Gate
from kolite_export.recipes import StaticQuantRecipe
from kolite_export.variants.context import BuildContext
from kolite_export.variants.spec import CPU, QuantizedScope, VariantSpec, register


def build(ctx: BuildContext, target: Path, exclude_nodes: tuple[str, ...] = ()) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from kolite_export.calibration import TextCalibrationReader

    recipe = StaticQuantRecipe.for_cpu(ctx.cpu, nodes_to_exclude=tuple(exclude_nodes))
    texts = ctx.calibration_texts[: recipe.calibration_texts]
    if not texts:
        raise ValueError("int8-static needs calibration texts")
    reader = TextCalibrationReader(ctx.checkpoint, texts)
    # Calibrate the plain fp32 graph: QDQ around fused contrib ops is not supported by every provider.
    quantize_static(
        ctx.fp32_path,
        target,
        reader,
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(recipe.op_types),
        per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=list(recipe.nodes_to_exclude) or None,
        calibrate_method=getattr(CalibrationMethod, recipe.calibration_method),
        extra_options={"MatMulConstBOnly": True},
    )
    return {**recipe.to_dict(), "calibration_texts": len(texts)}


def quantized_scope(ctx: BuildContext) -> QuantizedScope:
    return QuantizedScope(ctx.fp32_path, StaticQuantRecipe.for_cpu(ctx.cpu).op_types)


def current_recipe(cpu: CpuFeatures) -> dict[str, Any]:
    return StaticQuantRecipe.for_cpu(cpu).chosen_for_cpu()


SPEC = register(
    VariantSpec(
        name="int8-static",
        precision="int8",
        build=build,
        gate=Gate(min_label_agreement=0.99, min_entity_agreement=0.95),
        providers=CPU,
        rank=30,
        summary="QDQ of the plain graph, calibrated on 128 real texts that are not the validation texts",
        current_recipe=current_recipe,
        quantized_scope=quantized_scope,
    )
)
