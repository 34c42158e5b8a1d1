"""fp16: the fully fused graph in float16 with fp32 inputs and outputs, for the CUDA execution provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kolite_export.gates import Gate
from kolite_export.variants.context import BuildContext
from kolite_export.variants.spec import CUDA, VariantSpec, register


def build(ctx: BuildContext, target: Path, exclude_nodes: tuple[str, ...] = ()) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    path, opt_recipe = ctx.optimized()
    model = OnnxModel(onnx.load(str(path)))
    # fp32 inputs/outputs: callers keep feeding int64 ids and reading fp32 logits.
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(target))
    return {"converter": "onnxruntime.transformers float16", "keep_io_types": True, "base": opt_recipe}


SPEC = register(
    VariantSpec(
        name="fp16",
        precision="fp16",
        build=build,
        gate=Gate(min_label_agreement=0.99, min_entity_agreement=0.95),
        providers=CUDA,
        rank=10,
        summary="float16 with fp32 inputs/outputs for the CUDA execution provider; validated on CPU where it runs",
    )
)
