"""The nodes an int8 builder would quantize, with their weight sizes: what accuracy repair chooses from."""

from __future__ import annotations

from pathlib import Path

__all__ = ["weighted_nodes"]


def weighted_nodes(graph: Path, op_types: tuple[str, ...]) -> dict[str, int]:
    """Node name → weight parameters for every node of ``op_types`` whose weight (input 1) is a constant, in graph
    order. A MatMul of two activations (attention scores) has no constant weight and is not quantized
    (MatMulConstBOnly), so it is not listed."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    sizes = {init.name: _elements(init.dims) for init in model.graph.initializer}
    nodes = {}
    for node in model.graph.node:
        if node.name and node.op_type in op_types and len(node.input) > 1 and node.input[1] in sizes:
            nodes[node.name] = sizes[node.input[1]]
    return nodes


def _elements(dims: object) -> int:
    count = 1
    for dim in dims:  # type: ignore[attr-defined]
        count *= int(dim)
    return count
