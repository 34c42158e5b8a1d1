"""Exact work removal for heads that read only the first token: the tail of the encoder runs on that token alone.

A sequence-classification head such as ELECTRA's reads ``hidden[:, 0]`` (a ``Gather`` on axis 1 at index 0). Every
node between the last sequence-mixing op (the last layer's attention) and that ``Gather`` works row by row — the
attention output projection, the residual ``Add``, LayerNorm, the feed-forward GEMMs, Gelu, static
``QuantizeLinear`` — so the other rows it computes are read by nothing. This pass moves the ``Gather`` up to the
inputs of that tail: the attention still reads keys and values of every token, and the tail runs on one row per
text. Each row of a row-wise op is computed the same way whatever the number of rows (integer GEMMs accumulate
exactly; LayerNorm, Gelu and the scale-and-bias epilogues work per row or per element), so the logits should stay
bitwise the same; ``tests/test_first_token.py`` checks that on real graphs.

Not applicable (the graph is returned unchanged, with the reason) when the head is not a first-token ``Gather``
(mean pooling, token classification) or the tail contains anything that is not row-wise — notably dynamic int8's
``DynamicQuantizeLinear``, whose scale is taken over every token of the batch, so it reads all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PASS_VERSION", "first_token_tail", "with_first_token_tail"]

# Ops whose output row i depends only on input row i (given the constraints checked in ``_row_wise``).
_UNARY = {"Gelu", "FastGelu", "BiasGelu", "Erf", "Tanh", "Relu", "Sigmoid", "Cast", "Identity"}
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div"}
_NORMS = {"LayerNormalization", "SkipLayerNormalization"}
_GEMMS = {"MatMul", "MatMulInteger", "MatMulIntegerToFloat"}
_QUANTIZE = {"QuantizeLinear", "DequantizeLinear"}
# Producers of [batch, sequence, hidden] activations a tail may start from.
_SEQUENCE_OPS = {"Attention", "QAttention", "MultiHeadAttention", *_NORMS, "EmbedLayerNormalization"}
_INDEX = "kolite_first_token_index"


# Bumped when the pass changes: recorded in the recipes of the variants that run it, so older artifacts are rebuilt.
PASS_VERSION = 1


def first_token_tail(model: Any) -> tuple[Any, dict[str, Any]]:
    """``model`` with its row-wise tail computed for the first token only, and what was done (for the recipe):
    ``{"applied": True, "nodes": n, "from": [tensors]}`` or ``{"applied": False, "reason": ...}``."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    graph_nodes = list(graph.node)  # one Python object per node, so identity (``id``) holds throughout
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producer = {out: node for node in graph_nodes for out in node.output}
    readers: dict[str, list[Any]] = {}
    for node in graph_nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {out.name for out in graph.output}

    head = next((n for n in graph_nodes if _is_first_token_gather(n, constants)), None)
    if head is None:
        return model, {"applied": False, "reason": "the head reads more than the first token (no [:, 0] Gather)"}
    tail = _tail(head, producer, readers, constants, outputs)
    if not tail:
        return model, {"applied": False, "reason": "nothing row-wise between the encoder and the head"}
    frontier = _frontier(tail, producer, constants)
    for tensor in frontier:
        node = producer.get(tensor)
        if node is None or node.op_type not in _SEQUENCE_OPS or node.output[0] != tensor:
            if node is not None and node.op_type == "DynamicQuantizeLinear":
                reason = "dynamic quantization: each activation scale is taken over every token of the batch"
            else:
                kind = node.op_type if node is not None else "a graph input"
                reason = f"the tail reads {tensor!r} from {kind}, not from a per-token op"
            return model, {"applied": False, "reason": reason}

    # A frontier tensor only the tail reads keeps its name for the gathered row (its producer's full output is
    # renamed), so graph surgery that matches tensors by name (accuracy repair's float swaps) still lines up.
    inputs_renamed = {head.input[0]: head.output[0]}
    outputs_renamed = {head.input[0]: head.output[0]}
    gathers: dict[str, Any] = {}  # tensor the Gather follows → the Gather
    for tensor in frontier:
        if all(id(r) in tail for r in readers[tensor]):
            source = outputs_renamed[tensor] = f"{tensor}/all_tokens"
            gathers[source] = helper.make_node("Gather", [source, _INDEX], [tensor], name=f"{tensor}/first", axis=1)
        else:
            first = inputs_renamed[tensor] = f"{tensor}/first_token"
            gathers[tensor] = helper.make_node("Gather", [tensor, _INDEX], [first], name=f"{first}/Gather", axis=1)
    nodes = []
    for node in graph_nodes:
        if node is head:
            continue  # the tail now ends in the head's output
        if id(node) in tail or any(out in outputs_renamed for out in node.output):
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            if id(node) in tail:
                copy.input[:] = [inputs_renamed.get(t, t) for t in node.input]
            copy.output[:] = [outputs_renamed.get(t, t) for t in node.output]
            node = copy
        nodes.append(node)
        nodes.extend(gathers[out] for out in node.output if out in gathers)
    result = onnx.ModelProto()
    result.CopyFrom(model)
    del result.graph.node[:]
    result.graph.node.extend(nodes)
    read = {t for node in nodes for t in node.input}
    kept = [init for init in graph.initializer if init.name in read]  # the head's own index may now be unread
    del result.graph.initializer[:]
    result.graph.initializer.extend(kept)
    result.graph.initializer.append(numpy_helper.from_array(np.asarray(0, dtype=np.int64), _INDEX))
    return result, {"applied": True, "nodes": len(tail), "from": frontier}


def _tail(
    head: Any, producer: dict[str, Any], readers: dict[str, list[Any]], constants: dict[str, Any], outputs: set[str]
) -> dict[int, Any]:
    """id → node of the row-wise ancestors of ``head`` whose outputs nothing but ``head`` and each other read."""
    candidates: dict[int, Any] = {}
    pending = [head.input[0]]
    while pending:
        node = producer.get(pending.pop())
        if node is None or id(node) in candidates or not _row_wise(node, constants):
            continue
        candidates[id(node)] = node
        pending.extend(_data_inputs(node, constants))
    while True:  # drop the nodes something outside reads, until none is left
        outside = [
            key
            for key, node in candidates.items()
            if any(out in outputs for out in node.output)
            or any(id(r) not in candidates and r is not head for out in node.output for r in readers.get(out, []))
        ]
        if not outside:
            return candidates
        for key in outside:
            del candidates[key]


def _frontier(tail: dict[int, Any], producer: dict[str, Any], constants: dict[str, Any]) -> list[str]:
    """The activations the tail reads from outside it."""
    frontier: list[str] = []
    for node in tail.values():
        for tensor in _data_inputs(node, constants):
            source = producer.get(tensor)
            if (source is None or id(source) not in tail) and tensor not in frontier:
                frontier.append(tensor)
    return frontier


def _is_first_token_gather(node: Any, constants: dict[str, Any]) -> bool:
    from onnx import helper

    if node.op_type != "Gather" or node.domain not in ("", "ai.onnx") or len(node.input) != 2:
        return False
    axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
    index = constants.get(node.input[1])
    return axis == 1 and index is not None and index.ndim == 0 and int(index) == 0


def _data_inputs(node: Any, constants: dict[str, Any]) -> list[str]:
    return [t for t in node.input if t and t not in constants]


def _row_wise(node: Any, constants: dict[str, Any]) -> bool:
    """Whether each output row of ``node`` depends only on the same row of its activations (its other inputs are
    constants that broadcast along the last axis only)."""
    from onnx import helper

    if node.domain not in ("", "ai.onnx", "com.microsoft"):
        return False
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    data = _data_inputs(node, constants)
    if node.op_type in _UNARY or node.op_type in _ELEMENTWISE:
        small = all(constants[t].ndim <= 1 for t in node.input if t in constants)
        return small and (node.op_type != "BiasGelu" or len(data) == 1)
    if node.op_type in _NORMS:
        return attributes.get("axis", -1) == -1
    if node.op_type in _GEMMS:
        return len(data) == 1 and node.input[0] == data[0]
    if node.op_type in _QUANTIZE:
        scalar = all(constants[t].ndim == 0 for t in node.input[1:] if t in constants)
        return scalar and len(data) == 1 and node.input[0] == data[0]
    return False


def with_first_token_tail(source: Path, target: Path) -> dict[str, Any]:
    """Write ``source``'s graph to ``target`` with ``first_token_tail`` applied where it applies; the recipe fields
    that record it."""
    import onnx

    model, info = first_token_tail(onnx.load(str(source)))
    onnx.save(model, str(target))
    return {"first_token_pass": PASS_VERSION, "first_token_tail": info}
