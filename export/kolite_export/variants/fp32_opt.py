"""fp32-opt: ONNX Runtime's transformer fusions (Attention, EmbedLayerNorm, Gelu) on the fp32 graph."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kolite_export.gates import Gate
from kolite_export.variants.context import BuildContext
from kolite_export.variants.spec import CPU_CUDA, VariantSpec, register


def build(ctx: BuildContext, target: Path, exclude_nodes: tuple[str, ...] = ()) -> dict[str, Any]:
    path, recipe = ctx.optimized()
    shutil.copyfile(path, target)
    return dict(recipe)


SPEC = register(
    VariantSpec(
        name="fp32-opt",
        precision="fp32",
        build=build,
        gate=Gate(atol=1e-4),
        providers=CPU_CUDA,
        rank=40,
        default=True,
        summary="ONNX Runtime transformer fusions; the fused-op counts are in the manifest",
    )
)
