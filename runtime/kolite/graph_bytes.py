"""Refuse ONNX graphs whose tensors live in external data files, by reading the protobuf wire format directly.

kolite builds every session from the bytes it hashed (``InferenceSession(bytes)``). A graph loaded from bytes
resolves external data against the process's *working directory* (onnxruntime 1.31): files nobody verified, found
wherever the server happens to run. kolite artifacts are single-file graphs, so a graph naming external data is
refused before onnxruntime sees it. Reading the wire format needs no ``onnx`` package (the runtime has none):
only the few fields that can hold a tensor are followed, and initializer payloads are skipped by length.
"""

from __future__ import annotations

__all__ = ["external_tensors"]

# Field numbers of onnx.proto3 (onnx 1.x; stable since IR version 3).
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_FUNCTION_NODE = 7
_NODE_ATTRIBUTE = 5
_ATTR_TENSOR, _ATTR_GRAPH, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_MAX_DEPTH = 64  # subgraphs nest (If/Loop bodies); a hostile graph must not exhaust the stack


class _Truncated(ValueError):
    pass


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Truncated("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: memoryview):  # type: ignore[no-untyped-def]
    """(field number, wire type, value) of one message: value is an int or a memoryview of the payload."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = 0, pos + 8
        elif wire == 5:
            value, pos = 0, pos + 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise _Truncated(f"unsupported wire type {wire}")
        if pos > len(data):
            raise _Truncated("field runs past the end")
        yield number, wire, value


def _tensor(data: memoryview, found: list[str]) -> None:
    name, external = "", False
    for number, wire, value in _fields(data):
        if number == _TENSOR_NAME and wire == 2:
            name = bytes(value).decode("utf-8", "replace")
        elif (number == _TENSOR_EXTERNAL_DATA and wire == 2) or (number == _TENSOR_DATA_LOCATION and value == 1):
            external = True
    if external:
        found.append(name or "<unnamed>")


def _sparse(data: memoryview, found: list[str]) -> None:
    for number, wire, value in _fields(data):
        if number in (_SPARSE_VALUES, _SPARSE_INDICES) and wire == 2:
            _tensor(value, found)


def _nodes_of(data: memoryview, node_field: int, found: list[str], depth: int) -> None:
    for number, wire, value in _fields(data):
        if number == node_field and wire == 2:
            for attr_number, attr_wire, attr in _fields(value):
                if attr_number == _NODE_ATTRIBUTE and attr_wire == 2:
                    _attribute(attr, found, depth)


def _attribute(data: memoryview, found: list[str], depth: int) -> None:
    for number, wire, value in _fields(data):
        if wire != 2:
            continue
        if number in (_ATTR_TENSOR, _ATTR_TENSORS):
            _tensor(value, found)
        elif number in (_ATTR_SPARSE, _ATTR_SPARSES):
            _sparse(value, found)
        elif number in (_ATTR_GRAPH, _ATTR_GRAPHS):
            _graph(value, found, depth + 1)


def _graph(data: memoryview, found: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _Truncated(f"subgraphs nested deeper than {_MAX_DEPTH}")
    for number, wire, value in _fields(data):
        if wire != 2:
            continue
        if number == _GRAPH_INITIALIZER:
            _tensor(value, found)
        elif number == _GRAPH_SPARSE_INITIALIZER:
            _sparse(value, found)
    _nodes_of(data, _GRAPH_NODE, found, depth)


def external_tensors(model: bytes) -> list[str]:
    """Names of the tensors of a serialized ModelProto whose data lives outside it (empty: self-contained).
    Raises ValueError when the bytes are not a well-formed protobuf message."""
    found: list[str] = []
    view = memoryview(model)
    try:
        for number, wire, value in _fields(view):
            if number == _MODEL_GRAPH and wire == 2:
                _graph(value, found, 0)
            elif number == _MODEL_FUNCTIONS and wire == 2:
                _nodes_of(value, _FUNCTION_NODE, found, 0)
    except _Truncated as exc:
        raise ValueError(f"not a well-formed ONNX model: {exc}") from exc
    return found
