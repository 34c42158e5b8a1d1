"""int8-static: the dynamic int8 graph with calibrated *constant* activation scales feeding the same fused integer
kernels (``kolite_export.static_int8``), so a text's logits are bitwise the same alone or in any batch. Ranked
before dynamic int8: the default CPU variant."""

from __future__ import annotations

from typing import Any

from kolite_export.cpu import CpuFeatures
from kolite_export.first_token import PASS_VERSION, with_first_token_tail
from kolite_export.gates import Gate
from kolite_export.recipes import ERROR_FLOAT_BUDGET, ERROR_FLOAT_PASS, StaticScaleRecipe
from kolite_export.static_int8 import build_int8_static
from kolite_export.variants import int8
from kolite_export.variants.context import BuildContext
from kolite_export.variants.spec import CPU, QuantizedScope, VariantSpec, register


def quantized_scope(ctx: BuildContext) -> QuantizedScope:
    """Dynamic int8's float graph and op types, with the first-token tail applied as the built graph has it: repair
    splices float nodes into the built graph, so both must agree on which tensors hold one row or all of them."""
    scope = int8.quantized_scope(ctx)
    tailed = ctx.workdir / "scope.int8-static.first-token.onnx"
    if not tailed.is_file():
        with_first_token_tail(scope.graph, tailed)
    return QuantizedScope(tailed, scope.op_types, scope.gemm_as_matmul)


def current_recipe(cpu: CpuFeatures) -> dict[str, Any]:
    return {
        **StaticScaleRecipe.for_cpu(cpu).chosen_for_cpu(),
        "first_token_pass": PASS_VERSION,
        "error_float_pass": ERROR_FLOAT_PASS,
    }


SPEC = register(
    VariantSpec(
        name="int8-static",
        precision="int8",
        build=build_int8_static,
        gate=Gate(min_label_agreement=0.99, min_entity_agreement=0.95),
        providers=CPU,
        rank=15,
        default=True,
        summary="int8's graph with constant activation scales calibrated on 512 real texts that are not the "
        "validation texts: batch-invariant (a text's logits do not depend on its batch)",
        current_recipe=current_recipe,
        # dynamic int8's float graph and op types (with the same first-token tail): the nodes repair may keep in float
        quantized_scope=quantized_scope,
        calibration_texts=StaticScaleRecipe.calibration_texts,
        error_float_budget=ERROR_FLOAT_BUDGET,
    )
)
