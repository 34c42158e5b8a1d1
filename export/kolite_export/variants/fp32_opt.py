"""fp32-opt: ONNX Runtime's transformer fusions (Attention, EmbedLayerNorm, Gelu) on the fp32 graph, without the
SkipLayerNormalization and BiasGelu fusions whose CPU kernels are slower than the plain ops (A/B on the 000 stand-in:
+19 % texts/s at batch 32, −16 % batch-1 latency, logits within 1e-6). On CUDA, ONNX Runtime re-creates those two
fusions itself when the session loads (kolite disables them only on CPU), so nothing is lost there. A head that
reads only the first token gets the encoder's row-wise tail on that token alone (``kolite_export.first_token``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kolite_export.first_token import PASS_VERSION, with_first_token_tail
from kolite_export.gates import Gate
from kolite_export.recipes import CPU_SLOW_FUSIONS
from kolite_export.variants.context import BuildContext
from kolite_export.variants.spec import CPU_CUDA, VariantSpec, register


def build(ctx: BuildContext, target: Path, exclude_nodes: tuple[str, ...] = ()) -> dict[str, Any]:
    path, recipe = ctx.optimized(cpu_kernels=True)
    return {**recipe, **with_first_token_tail(path, target)}


SPEC = register(
    VariantSpec(
        name="fp32-opt",
        precision="fp32",
        build=build,
        gate=Gate(atol=1e-4),
        providers=CPU_CUDA,
        rank=40,
        default=True,
        # an older all-fusion graph, or one made before the first-token pass, is rebuilt
        current_recipe=lambda cpu: {"skipped_fusions": list(CPU_SLOW_FUSIONS), "first_token_pass": PASS_VERSION},
        summary="ONNX Runtime transformer fusions but the two that are slow on CPU; fused-op counts in the manifest",
    )
)
