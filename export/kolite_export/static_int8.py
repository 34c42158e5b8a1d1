"""Batch-invariant int8: the dynamic int8 graph with calibrated *constant* activation scales.

Dynamic quantization (``DynamicQuantizeLinear``) takes one scale per tensor over the whole padded batch, so a
text's logits depend on the batch it rides in. Here every ``DynamicQuantizeLinear`` becomes a ``QuantizeLinear``
with a scale and zero point calibrated on real texts, feeding the same integer kernels the dynamic graph runs
(MatMulIntegerToFloat, built here, and QAttention). Integer GEMMs accumulate exactly and every
other op works per token (attention adds exact zeros for padding), so a text's logits are bitwise the same alone
or in any batch. Nodes that cannot take a static scale stay *float* (``exclude_nodes``), never dynamic: one
dynamic node would bring the batch dependence back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kolite_export.activation_ranges import choose_range, collect_stats, uint8_params
from kolite_export.first_token import PASS_VERSION, first_token_tail
from kolite_export.recipes import StaticScaleRecipe

if TYPE_CHECKING:
    import onnx

    from kolite_export.variants.context import BuildContext

__all__ = ["build_int8_static", "dynamic_quantized_inputs", "fuse_integer_matmuls", "with_static_scales"]


def dynamic_quantized_inputs(model: onnx.ModelProto) -> list[str]:
    """The float tensors the dynamic graph quantizes per call (inputs of its DynamicQuantizeLinear nodes)."""
    return [node.input[0] for node in model.graph.node if node.op_type == "DynamicQuantizeLinear"]


def with_static_scales(model: onnx.ModelProto, params: dict[str, tuple[np.float32, np.uint8]]) -> onnx.ModelProto:
    """``model`` with each DynamicQuantizeLinear(x) replaced by QuantizeLinear(x, scale, zero point) from
    ``params[x]``. The scale and zero point become initializers under the names the dynamic node gave its outputs,
    so every consumer (the scale products, MatMulInteger, QAttention) reads the constants unchanged."""
    import onnx
    from onnx import helper, numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    nodes = []
    for node in graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            nodes.append(node)
            continue
        source, (quantized, scale_name, zero_name) = node.input[0], node.output
        if source not in params:
            raise ValueError(f"no calibrated range for {source!r} (input of {node.name})")
        scale, zero = params[source]
        graph.initializer.append(numpy_helper.from_array(np.asarray(scale, dtype=np.float32), scale_name))
        graph.initializer.append(numpy_helper.from_array(np.asarray(zero, dtype=np.uint8), zero_name))
        nodes.append(helper.make_node("QuantizeLinear", [source, scale_name, zero_name], [quantized], name=node.name))
    del graph.node[:]
    graph.node.extend(nodes)
    return result


def fuse_integer_matmuls(model: onnx.ModelProto) -> onnx.ModelProto:
    """MatMulInteger → Cast → Mul(a_scale × b_scale) [→ Add(bias)] as one MatMulIntegerToFloat node.

    onnxruntime makes this fusion at load only when the activation scale comes from a DynamicQuantizeLinear; with a
    constant scale it folds the scale product first and the four nodes stay apart (three extra passes over the
    output). Built here explicitly, the static graph runs the kernel DynamicQuantizeMatMul runs, minus the
    activation min/max."""
    import onnx
    from onnx import helper

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    initializers = {init.name for init in graph.initializer}
    outputs = {out.name for out in graph.output}

    def only_consumer(name: str, op_type: str) -> Any:
        found = consumers.get(name, [])
        if len(found) == 1 and found[0].op_type == op_type and name not in outputs:
            return found[0]
        return None

    replaced: dict[str, Any] = {}  # name of the first node of a fused chain → its MatMulIntegerToFloat
    dropped: set[str] = set()
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        cast = only_consumer(node.output[0], "Cast")
        mul = cast and only_consumer(cast.output[0], "Mul")
        scales = mul and producer.get(next(i for i in mul.input if i != cast.output[0]))
        if scales is None or scales.op_type != "Mul" or len(consumers[scales.output[0]]) != 1:
            continue
        a_scale, b_scale = scales.input
        add = only_consumer(mul.output[0], "Add")
        bias = add and next((i for i in add.input if i in initializers), None)
        chain = [node, cast, mul, scales] + ([add] if bias else [])
        a, b, a_zero, b_zero = [*node.input, "", ""][:4]
        fused = helper.make_node(
            "MatMulIntegerToFloat",
            [a, b, a_scale, b_scale, a_zero, b_zero, bias or ""],
            [(add if bias else mul).output[0]],
            name=f"{node.name}_to_float",
            domain="com.microsoft",
        )
        replaced[scales.name or scales.output[0]] = fused
        dropped.update(n.name or n.output[0] for n in chain)
    result = onnx.ModelProto()
    result.CopyFrom(model)
    kept = []
    for node in graph.node:
        key = node.name or node.output[0]
        if key in replaced:
            kept.append(replaced[key])
        elif key not in dropped:
            kept.append(node)
    del result.graph.node[:]
    result.graph.node.extend(_topological(kept, {i.name for i in graph.input} | initializers))
    return result


def _topological(nodes: list[Any], available: set[str]) -> list[Any]:
    """``nodes`` in an order where every input is produced before it is read (the fused node takes the place of
    its scale product, which may come before the activation it reads)."""
    ready, ordered, pending = set(available) | {""}, [], list(nodes)
    while pending:
        remaining = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                remaining.append(node)
        if len(remaining) == len(pending):
            raise ValueError(f"graph has a cycle or a missing input near {remaining[0].name}")
        pending = remaining
    return ordered


def calibration_batches(ctx: BuildContext, texts: tuple[str, ...], batch_size: int) -> list[dict[str, np.ndarray]]:
    from kolite_export.validation import encode_set

    return list(encode_set(ctx.checkpoint, texts, batch_size).batches)


def build_int8_static(
    ctx: BuildContext, target: Path, exclude_nodes: tuple[str, ...] = (), recipe: StaticScaleRecipe | None = None
) -> dict[str, Any]:
    """Quantize the fusion-optimized graph as the dynamic int8 variant does (less ``exclude_nodes``, which stay
    float), calibrate every activation scale on ``ctx.calibration_texts``, and write the static graph. ``recipe``
    (default: the CPU's) is for studies of other recipes (``kolite_bench.range_study``); export never passes one."""
    import dataclasses

    import onnx

    from kolite_export.variants import int8

    base_recipe = recipe or StaticScaleRecipe.for_cpu(ctx.cpu)
    recipe = dataclasses.replace(base_recipe, nodes_to_exclude=tuple(exclude_nodes))
    texts = ctx.calibration_texts[: recipe.calibration_texts]
    if not texts:
        raise ValueError("int8-static needs calibration texts")
    dynamic_path = ctx.workdir / "scratch.int8-static.dynamic.onnx"
    dynamic_info = int8.quantize(ctx, dynamic_path, recipe.dynamic())
    dynamic = onnx.load(str(dynamic_path))
    tensors = dynamic_quantized_inputs(dynamic)
    if recipe.base_graph == "fp32":
        base = ctx.fp32_path
    else:
        base, _ = ctx.optimized(cpu_kernels=recipe.base_graph == "fp32-opt-cpu")
    params = {}
    if tensors:  # none when repair keeps every node in float
        stats = collect_stats(base, tensors, calibration_batches(ctx, texts, recipe.calibration_batch_size))
        params = {n: uint8_params(*choose_range(stats[n], recipe.range_method, recipe.percentile)) for n in tensors}
    # The first-token pass runs on the finished graph: calibration saw every token, as the encoder layers do.
    static, first_token = first_token_tail(fuse_integer_matmuls(with_static_scales(dynamic, params)))
    onnx.save(static, str(target))
    dynamic_path.unlink()
    return {
        **recipe.to_dict(),
        "calibration_texts_used": len(texts),
        "calibration_source": ctx.calibration_source or "given texts",
        "quantized_activations": len(tensors),
        "fused_ops": dynamic_info.get("fused_ops", {}),
        "skipped_fusions": dynamic_info.get("skipped_fusions", []),
        "first_token_pass": PASS_VERSION,
        "first_token_tail": first_token,
    }
