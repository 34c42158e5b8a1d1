"""Put one quantized node back in float inside an already-quantized graph, without re-quantizing the rest.

ONNX Runtime's quantizers (dynamic and QDQ) replace a node by a small subgraph that starts at the node's float
inputs and ends at its float outputs, under the same tensor names. Walking back from the outputs to tensors the
float graph also has finds that subgraph; swapping it for the float node gives the graph a rebuild with
``exclude_nodes=(node,)`` would give, in a second instead of a full quantization pass. Used only to *rank* nodes;
what ships is always rebuilt by the variant's builder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["FloatSwapper"]


class FloatSwapper:
    def __init__(self, quantized: Any, float_model: Any) -> None:
        self._quantized = quantized
        graph = float_model.graph
        self._float_nodes = {node.name: node for node in graph.node if node.name}
        self._float_initializers = {init.name: init for init in graph.initializer}
        self._float_tensors = {t for node in graph.node for t in node.output}
        self._float_tensors |= {i.name for i in graph.input} | set(self._float_initializers)
        self._producers = {t: i for i, node in enumerate(quantized.graph.node) for t in node.output}
        self._consumers: dict[str, set[int]] = {}
        for i, node in enumerate(quantized.graph.node):
            for t in node.input:
                self._consumers.setdefault(t, set()).add(i)
        for output in quantized.graph.output:
            self._consumers.setdefault(output.name, set()).add(-1)

    @classmethod
    def open(cls, quantized: Path, float_graph: Path) -> FloatSwapper:
        import onnx

        return cls(onnx.load(str(quantized)), onnx.load(str(float_graph)))

    def _subgraph(self, node: Any) -> set[int] | None:
        """Indices of the quantized nodes that stand for ``node``; None if they cannot be cut out cleanly."""
        if not all(t in self._producers for t in node.output):
            return None
        replaced: set[int] = set()
        stack = list(node.output)
        while stack:
            tensor = stack.pop()
            if tensor in self._float_tensors and tensor not in node.output:
                continue  # a float input of the node: the subgraph starts after it
            index = self._producers.get(tensor)
            if index is None or index in replaced:
                continue  # a quantized weight (initializer) or already seen
            replaced.add(index)
            stack.extend(self._quantized.graph.node[index].input)
        # Only intermediate tensors may die with the subgraph: a quantized value shared with another node stays.
        nodes = self._quantized.graph.node
        for index in replaced:
            for tensor in nodes[index].output:
                if tensor not in node.output and not self._consumers.get(tensor, set()) <= replaced:
                    return None
        return replaced

    def swapped(self, name: str) -> bytes | None:
        """The quantized graph with node ``name`` back in float, serialized; None if that cannot be done here."""
        import onnx

        node = self._float_nodes.get(name)
        replaced = self._subgraph(node) if node is not None else None
        if not replaced:
            return None
        source = self._quantized.graph
        at = self._producers[node.output[0]]
        nodes = [n for i, n in enumerate(source.node) if i not in replaced or i == at]
        nodes[nodes.index(source.node[at])] = node
        used = {t for n in nodes for t in n.input}
        initializers = [init for init in source.initializer if init.name in used]
        have = {init.name for init in initializers}
        initializers += [
            self._float_initializers[t] for t in node.input if t in self._float_initializers and t not in have
        ]
        graph = onnx.helper.make_graph(
            nodes, source.name, list(source.input), list(source.output), initializer=initializers
        )
        model = onnx.helper.make_model(graph, opset_imports=list(self._quantized.opset_import))
        model.ir_version = self._quantized.ir_version
        return model.SerializeToString()
