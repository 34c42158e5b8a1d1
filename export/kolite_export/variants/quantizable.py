"""The nodes an int8 builder would quantize, with their weight sizes: what accuracy repair chooses from."""

from __future__ import annotations

from pathlib import Path

__all__ = ["weighted_nodes"]


def weighted_nodes(graph: Path, op_types: tuple[str, ...], gemm_as_matmul: bool = False) -> dict[str, int]:
    """Node name → weight parameters for every node of ``op_types`` whose weight (input 1) is a constant, in graph
    order. A MatMul of two activations (attention scores) has no constant weight and is not quantized
    (MatMulConstBOnly), so it is not listed. ``gemm_as_matmul``: the quantizer first rewrites each plain Gemm
    (alpha = beta = 1, A not transposed) as ``<name>_MatMul`` + ``<name>_Add`` and quantizes that MatMul, as ONNX
    Runtime's dynamic quantizer does (the classification head's Linear layers are Gemm nodes)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(graph), load_external_data=False)
    sizes = {init.name: _elements(init.dims) for init in model.graph.initializer}
    nodes = {}
    for node in model.graph.node:
        if not node.name or len(node.input) < 2 or node.input[1] not in sizes:
            continue
        if node.op_type in op_types:
            nodes[node.name] = sizes[node.input[1]]
        elif gemm_as_matmul and node.op_type == "Gemm" and "MatMul" in op_types:
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if (
                attributes.get("alpha", 1.0) == 1.0
                and attributes.get("beta", 1.0) == 1.0
                and not attributes.get("transA")
            ):
                nodes[f"{node.name}_MatMul"] = sizes[node.input[1]]
    return nodes


def _elements(dims: object) -> int:
    count = 1
    for dim in dims:  # type: ignore[attr-defined]
        count *= int(dim)
    return count
