"""Facts the runtime checks in an ONNX graph before trusting its manifest, read without the ``onnx`` package.

The runtime does not depend on ``onnx``; what it needs is two facts from the graph's initializers, which the
protobuf wire format gives cheaply (the file is memory-mapped and every large field is skipped, never copied):

- the rows of the position-embedding table: a manifest's ``max_length`` above it would make onnxruntime index
  past the table at run time (``EmbedLayerNormalization ... index out of range``) instead of failing at load;
- the files the initializers keep as external data: each must stay inside the artifact folder;
- the dense weights a token is multiplied by (the weight elements of every matrix-multiply node): how much work
  one token costs, which decides whether a small call runs faster on one thread (``kolite.session``).

Export records the first fact in the manifest (``max_positions``) with this same reader, so there is one rule.
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GraphFacts", "read_graph_facts"]

# onnx.proto field numbers: ModelProto.graph, GraphProto.initializer, TensorProto.dims/name/external_data,
# StringStringEntryProto.key/value.
_MODEL_GRAPH, _GRAPH_NODE, _GRAPH_INITIALIZER = 7, 1, 5
_NODE_INPUT, _NODE_OP_TYPE = 1, 4
_TENSOR_DIMS, _TENSOR_NAME, _TENSOR_EXTERNAL_DATA = 1, 8, 13
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_POSITION_TABLE_SUFFIX = "position_embeddings.weight"  # what transformers names it, kept by export and ORT fusions
# Ops that multiply each token by a weight matrix, float and quantized (ONNX and onnxruntime contrib ops).
_MATMUL_OPS = frozenset({
    "MatMul", "Gemm", "FusedMatMul", "MatMulInteger", "QLinearMatMul", "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul", "MatMulNBits", "Attention", "QAttention", "MultiHeadAttention",
})


@dataclass(frozen=True)
class GraphFacts:
    """``position_rows``: rows of the position-embedding table, None when the graph has none kolite recognises
    (rotary positions, renamed weights); ``external_files``: the external-data locations, as written in the graph;
    ``dense_weights``: elements of the weight matrices that matrix-multiply nodes read (≈ multiply-accumulates per
    token; embedding tables are looked up, not multiplied, and are not counted)."""

    position_rows: int | None
    external_files: tuple[str, ...]
    dense_weights: int = 0


class _Malformed(Exception):
    pass


def read_graph_facts(graph: str | Path | bytes) -> GraphFacts:
    """The facts of a graph: a file (memory-mapped) or its bytes already in memory (e.g. the verified bytes a
    session is built from). ValueError if it is not a readable ONNX protobuf."""
    if isinstance(graph, bytes):
        return _checked(graph, "the graph")
    with open(graph, "rb") as handle:
        if handle.seek(0, 2) == 0:  # mmap cannot map an empty file
            return _checked(b"", str(graph))
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _checked(data, str(graph))


def _checked(data: bytes | mmap.mmap, what: str) -> GraphFacts:
    if not len(data):
        raise ValueError(f"{what} is empty, not an ONNX graph")
    try:
        return _facts(data)
    except (_Malformed, IndexError) as exc:
        raise ValueError(f"{what} is not a readable ONNX graph ({exc or 'truncated'})") from None


def _facts(data: bytes | mmap.mmap) -> GraphFacts:
    rows: int | None = None
    external: list[str] = []
    matrices: dict[str, int] = {}  # initializer name → elements, for those of two or more dims
    matmul_inputs: set[str] = set()
    for graph_start, graph_end in _fields(data, 0, len(data), _MODEL_GRAPH):
        for start, end in _fields(data, graph_start, graph_end, _GRAPH_INITIALIZER):
            name, dims, locations = _tensor(data, start, end)
            external += locations
            if rows is None and name.endswith(_POSITION_TABLE_SUFFIX) and len(dims) == 2:
                rows = dims[0]
            if len(dims) >= 2:
                matrices[name] = math.prod(dims)
        for start, end in _fields(data, graph_start, graph_end, _GRAPH_NODE):
            op_type, inputs = _node(data, start, end)
            if op_type in _MATMUL_OPS:
                matmul_inputs.update(inputs)
    dense = sum(matrices[name] for name in matmul_inputs if name in matrices)
    return GraphFacts(rows, tuple(dict.fromkeys(external)), dense)


def _node(data: bytes | mmap.mmap, start: int, end: int) -> tuple[str, list[str]]:
    strings = {_NODE_INPUT: [], _NODE_OP_TYPE: []}
    for number, found in strings.items():
        for field_start, field_end in _fields(data, start, end, number):
            found.append(data[field_start:field_end].decode("utf-8", "replace"))
    return "".join(strings[_NODE_OP_TYPE]), strings[_NODE_INPUT]


def _tensor(data: bytes | mmap.mmap, start: int, end: int) -> tuple[str, list[int], list[str]]:
    name, dims, locations = "", [], []
    position = start
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if number == _TENSOR_DIMS and wire == 0:
            value, position = _varint(data, position)
            dims.append(value)
        elif number == _TENSOR_DIMS and wire == 2:  # packed
            length, position = _varint(data, position)
            stop = position + length
            while position < stop:
                value, position = _varint(data, position)
                dims.append(value)
        elif number == _TENSOR_NAME and wire == 2:
            length, position = _varint(data, position)
            name = data[position : position + length].decode("utf-8", "replace")
            position += length
        elif number == _TENSOR_EXTERNAL_DATA and wire == 2:
            length, position = _varint(data, position)
            entry = _entry(data, position, position + length)
            if entry[0] == "location":
                locations.append(entry[1])
            position += length
        else:
            position = _skip(data, position, wire)
    return name, dims, locations


def _entry(data: bytes | mmap.mmap, start: int, end: int) -> tuple[str, str]:
    found = {_ENTRY_KEY: "", _ENTRY_VALUE: ""}
    for number in found:
        for field_start, field_end in _fields(data, start, end, number):
            found[number] = data[field_start:field_end].decode("utf-8", "replace")
    return found[_ENTRY_KEY], found[_ENTRY_VALUE]


def _fields(data: bytes | mmap.mmap, start: int, end: int, wanted: int) -> Iterator[tuple[int, int]]:
    """(start, end) of every length-delimited field numbered ``wanted`` in the message spanning start..end."""
    position = start
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, position = _varint(data, position)
            if position + length > end:
                raise _Malformed(f"field {number} runs past its message")
            if number == wanted:
                yield position, position + length
            position += length
        else:
            position = _skip(data, position, wire)


def _skip(data: bytes | mmap.mmap, position: int, wire: int) -> int:
    if wire == 0:
        return _varint(data, position)[1]
    if wire == 1:
        return position + 8
    if wire == 5:
        return position + 4
    if wire == 2:
        length, position = _varint(data, position)
        return position + length
    raise _Malformed(f"wire type {wire}")


def _varint(data: bytes | mmap.mmap, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise _Malformed("varint too long")
