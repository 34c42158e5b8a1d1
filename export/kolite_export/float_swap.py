"""Move quantized nodes between a float graph and its quantized version without re-quantizing anything.

ONNX Runtime's quantizers (dynamic and QDQ) replace a node by a small subgraph that starts at the node's float
inputs and ends at its float outputs, under the same tensor names (the dynamic quantizer first rewrites a plain
Gemm ``X`` as ``X_MatMul`` + ``X_Add``; the ``X_MatMul`` it quantizes stands for the Gemm). Walking back from the
outputs to tensors the float graph also has finds that subgraph, so a node can be

- put back in float inside the quantized graph (``with_float``: what a rebuild with ``exclude_nodes`` gives), or
- quantized alone inside the float graph (``quantized_alone``: its own quantization error, free of the others'),

each in about a second instead of a quantization pass. Used to rank and search; what ships is always rebuilt by
the variant's builder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["GraphSplicer"]

SCRATCH = "scratch.splice"  # the exporter deletes scratch.* files with its staging folder


class GraphSplicer:
    def __init__(self, quantized: Any, float_model: Any, op_types: tuple[str, ...] = ()) -> None:
        self._quantized, self._float, self._op_types = quantized, float_model, op_types
        self._folder: Path | None = None  # where the weights lie as external data (``open``), else inline
        graph = float_model.graph
        self._float_nodes = {node.name: node for node in graph.node if node.name}
        self._float_initializers = {init.name: init for init in graph.initializer}
        self._float_tensors = {t for node in graph.node for t in node.output}
        self._float_tensors |= {i.name for i in graph.input} | set(self._float_initializers)
        self._float_readers: dict[str, list[Any]] = {}
        for node in graph.node:
            for t in node.input:
                self._float_readers.setdefault(t, []).append(node)
        self._producers = {t: i for i, node in enumerate(quantized.graph.node) for t in node.output}
        self._consumers: dict[str, set[int]] = {}
        for i, node in enumerate(quantized.graph.node):
            for t in node.input:
                self._consumers.setdefault(t, set()).add(i)
        for output in quantized.graph.output:
            self._consumers.setdefault(output.name, set()).add(-1)

    @classmethod
    def open(cls, quantized: Path, float_graph: Path, op_types: tuple[str, ...] = ()) -> GraphSplicer:
        """``op_types``: what the quantizer quantizes (a QDQ pair that feeds one of those stays).

        The weights are written once beside ``quantized`` as external data, so each spliced graph is a small
        file that refers to them instead of a copy of a few hundred MB to serialize and parse."""
        import onnx
        from onnx.external_data_helper import convert_model_to_external_data

        splicer = cls(onnx.load(str(quantized)), onnx.load(str(float_graph)), op_types)
        splicer._folder = quantized.parent
        for model, name in ((splicer._quantized, "quantized"), (splicer._float, "float")):
            weights = f"{SCRATCH}.{name}.weights"
            convert_model_to_external_data(model, all_tensors_to_one_file=True, location=weights, size_threshold=1024)
            onnx.save(model, str(quantized.parent / f"{SCRATCH}.{name}.onnx"))  # writes the weights, keeps references
        return splicer

    def _float_node(self, name: str) -> Any:
        node = self._float_nodes.get(name)
        if node is None and name.endswith("_MatMul"):  # a Gemm the dynamic quantizer rewrote before quantizing
            gemm = self._float_nodes.get(name.removesuffix("_MatMul"))
            node = gemm if gemm is not None and gemm.op_type == "Gemm" else None
        return node

    def _float_unit(self, name: str) -> list[Any] | None:
        """The float nodes one quantized subgraph stands for: the node, plus its bias Add when the quantized graph
        carries that bias inside the integer GEMM (int8-static's MatMulIntegerToFloat); None if there is none."""
        node = self._float_node(name)
        if node is None:
            return None
        if all(t in self._producers for t in node.output):
            return [node]
        readers = self._float_readers.get(node.output[0], []) if len(node.output) == 1 else []
        bias = readers[0] if len(readers) == 1 and readers[0].op_type == "Add" else None
        constant = bias is not None and any(t in self._float_initializers for t in bias.input)
        if constant and all(t in self._producers for t in bias.output):
            return [node, bias]
        return None

    def _part(self, unit: list[Any]) -> set[int] | None:
        """Indices of the quantized nodes that stand for the float ``unit``; None if they cannot be cut out cleanly."""
        own = {t for node in unit for t in node.output}
        part: set[int] = set()
        stack = list(unit[-1].output)
        while stack:
            tensor = stack.pop()
            if tensor in self._float_tensors and tensor not in own:
                continue  # a float input of the unit: the subgraph starts after it
            index = self._producers.get(tensor)
            if index is None or index in part:
                continue  # a quantized weight (initializer) or already seen
            part.add(index)
            stack.extend(self._quantized.graph.node[index].input)
        return part

    def _removable(self, outputs: set[str], part: set[int]) -> set[int]:
        """The part without what other nodes still read (e.g. a QDQ pair on an activation that a quantized node
        outside the part also reads) and what that is computed from; ``outputs`` are the float nodes' outputs."""
        nodes = self._quantized.graph.node
        while True:
            shared = {
                index
                for index in part
                for tensor in nodes[index].output
                if tensor not in outputs and not self._consumers.get(tensor, set()) <= part
            }
            if not shared:
                return part
            part = part - shared

    def with_float(self, names: Iterable[str]) -> Path | bytes | None:
        """The quantized graph with the nodes ``names`` back in float, serialized; None if one cannot be swapped."""
        units = [self._float_unit(name) for name in names]
        parts = [self._part(unit) if unit is not None else None for unit in units]
        if not all(parts):
            return None
        float_nodes = [node for unit in units for node in unit]  # type: ignore[union-attr]
        outputs = {t for node in float_nodes for t in node.output}
        removed = self._removable(outputs, set().union(*parts))  # type: ignore[arg-type]
        swaps = {self._producers[unit[-1].output[0]]: unit for unit in units}  # type: ignore[index]
        if not set(swaps) <= removed:
            return None
        inputs = {t for node in float_nodes for t in node.input if t in self._float_tensors}
        dead_pairs, renamed = self._dead_pairs(outputs | inputs, removed)
        removed |= dead_pairs
        source = self._quantized.graph
        nodes = []
        for i, n in enumerate(source.node):
            if i in swaps:  # the quantized node that produced the unit's output: the float unit takes its place
                nodes.extend(self._renamed(node, renamed) for node in swaps[i])
            elif i not in removed:
                nodes.append(self._renamed(n, renamed))
        extra = [self._float_initializers[t] for n in float_nodes for t in n.input if t in self._float_initializers]
        return self._serialize(self._quantized, nodes, list(source.initializer), extra)

    def _dead_pairs(self, tensors: set[str], removed: set[int]) -> tuple[set[int], dict[str, str]]:
        """QDQ graphs quantize a tensor once (QuantizeLinear → DequantizeLinear) for every reader, the residual Add
        included. With the nodes in float, a pair on their inputs or outputs that no remaining node of a quantized
        type reads goes too, as a rebuild would not write it; its readers read the float tensor."""
        nodes = self._quantized.graph.node
        pairs: set[int] = set()
        renamed: dict[str, str] = {}
        for tensor in tensors:
            for q in self._consumers.get(tensor, set()) - {-1} - removed:
                if nodes[q].op_type != "QuantizeLinear":
                    continue
                dqs = self._consumers.get(nodes[q].output[0], set()) - {-1}
                readers = {r for dq in dqs for r in self._consumers.get(nodes[dq].output[0], set())} - removed
                if all(nodes[dq].op_type == "DequantizeLinear" for dq in dqs) and not any(
                    r == -1 or nodes[r].op_type in self._op_types for r in readers
                ):
                    pairs |= {q, *dqs}
                    renamed.update({nodes[dq].output[0]: tensor for dq in dqs})
        return pairs, renamed

    @staticmethod
    def _renamed(node: Any, renamed: dict[str, str]) -> Any:
        if not any(t in renamed for t in node.input):
            return node
        import onnx

        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [renamed.get(t, t) for t in node.input]
        return copy

    def quantized_alone(self, name: str) -> Path | bytes | None:
        """The float graph with only node ``name`` quantized, serialized; None if that cannot be done here."""
        unit = self._float_unit(name)
        part = self._part(unit) if unit is not None else None
        if not part or unit is None:
            return None
        quantized = self._quantized.graph
        float_nodes = list(self._float.graph.node)
        at = next(i for i, n in enumerate(float_nodes) if n is unit[0])
        inserted = [quantized.node[i] for i in sorted(part)]
        kept = [n for n in float_nodes if not any(n is u for u in unit)]
        nodes = [*kept[:at], *inserted, *kept[at:]]
        extra = [init for init in quantized.initializer if init.name not in self._float_initializers]
        return self._serialize(self._float, nodes, list(self._float.graph.initializer), extra)

    def _serialize(self, model: Any, nodes: list[Any], initializers: list[Any], extra: list[Any]) -> Path | bytes:
        """``model`` with ``nodes``; of ``initializers`` + ``extra`` only those the nodes read, each once. A file
        beside the external weights (replaced by the next call), or the serialized graph."""
        import onnx

        used = {t for n in nodes for t in n.input}
        kept: dict[str, Any] = {}
        for init in [*initializers, *extra]:
            if init.name in used and init.name not in kept:
                kept[init.name] = init
        source = model.graph
        graph = onnx.helper.make_graph(
            nodes, source.name, list(source.input), list(source.output), initializer=list(kept.values())
        )
        opsets = {o.domain: o for o in [*self._float.opset_import, *self._quantized.opset_import]}
        result = onnx.helper.make_model(graph, opset_imports=list(opsets.values()))
        result.ir_version = max(self._float.ir_version, self._quantized.ir_version)
        if self._folder is None:
            return result.SerializeToString()
        path = self._folder / f"{SCRATCH}.onnx"
        path.write_bytes(result.SerializeToString())
        return path
