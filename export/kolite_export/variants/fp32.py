"""fp32: the traced graph itself (``torch.onnx.export``), the reference every other variant starts from."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kolite_export.gates import Gate
from kolite_export.variants.context import BuildContext
from kolite_export.variants.spec import CPU_CUDA, VariantSpec, register


def build(ctx: BuildContext, target: Path, exclude_nodes: tuple[str, ...] = ()) -> dict[str, Any]:
    from kolite_export.onnx_export import OPSET

    if ctx.fp32_path != target:
        shutil.copyfile(ctx.fp32_path, target)
    return {"exporter": "torch.onnx.export (TorchScript)", "opset": OPSET, "dynamic_axes": ["batch", "sequence"]}


SPEC = register(
    VariantSpec(
        name="fp32",
        precision="fp32",
        build=build,
        gate=Gate(atol=1e-4),
        providers=CPU_CUDA,
        rank=50,
        default=True,
        summary="the traced graph, opset 17, dynamic batch and sequence axes",
    )
)
