"""Issue 23 item 4: the Gelu → QuantizeLinear rewrite plus the native kernel give bitwise the unfused graph's output.

Builds the library (under pytest's tmp dir; g++ takes about a second) and runs a tiny synthetic graph both ways.
"""

from __future__ import annotations

import platform

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from kolite.session import build_session_options
from kolite_bench.native_fusion.build import build_library, compiler
from kolite_bench.native_fusion.rewrite import DOMAIN, fuse_gelu_quantize, native_session_options
from onnx import TensorProto, helper, numpy_helper

pytestmark = [
    pytest.mark.skipif(compiler() is None, reason="no C++ compiler (g++ or $CXX): the native library cannot be built"),
    pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="the kernel is x86-64 only"),
]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory):
    return build_library(tmp_path_factory.mktemp("kolite-native"))


def _graph(gelu_domain: str, zero_point: np.ndarray, scale: float, extra_reader: bool = False) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 64])
    out_type = TensorProto.UINT8 if zero_point.dtype == np.uint8 else TensorProto.INT8
    outputs = [helper.make_tensor_value_info("q", out_type, ["batch", "seq", 64])]
    nodes = [
        helper.make_node("Gelu", ["x"], ["g"], domain=gelu_domain, name="gelu"),
        helper.make_node("QuantizeLinear", ["g", "s", "z"], ["q"], name="quant"),
    ]
    if extra_reader:  # a second reader of the Gelu output: the chain must be left alone
        nodes.append(helper.make_node("Identity", ["g"], ["g2"]))
        outputs.append(helper.make_tensor_value_info("g2", TensorProto.FLOAT, ["batch", "seq", 64]))
    initializers = [numpy_helper.from_array(np.array(scale, np.float32), "s"), numpy_helper.from_array(zero_point, "z")]
    opsets = [helper.make_opsetid("", 20 if gelu_domain == "" else 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(helper.make_graph(nodes, "t", [x], outputs, initializers), opset_imports=opsets,
                             ir_version=9)


def _inputs() -> np.ndarray:
    rng = np.random.default_rng(23)
    x = rng.normal(0.0, 2.5, (3, 37, 64)).astype(np.float32)  # 7,104 values: many 8-lane blocks and a short tail
    flat = x.reshape(-1)
    # the erf branch split, the clamps of both MLAS erf kernels, zeros, far tails
    special = np.array([0.921875, 3.725, 3.925], np.float32) * np.float32(np.sqrt(2))
    flat[:8] = [0.0, -0.0, *special, -special[0], 12.0, -12.0]
    return x


@pytest.mark.parametrize(
    ("gelu_domain", "zero_point", "scale"),
    [("com.microsoft", np.array(131, np.uint8), 0.0213), ("", np.array(-5, np.int8), 0.0117),
     ("com.microsoft", np.array(0, np.uint8), 0.0007)],
)
def test_fused_graph_is_bitwise_the_unfused_graph(library, gelu_domain, zero_point, scale) -> None:
    model = _graph(gelu_domain, zero_point, scale)
    fused, count = fuse_gelu_quantize(model)
    assert count == 1
    assert [(n.domain, n.op_type) for n in fused.graph.node] == [
        (DOMAIN, "GeluQuantizeLinear" if zero_point.dtype == np.uint8 else "GeluQuantizeLinearS8")]
    x = _inputs()
    plain = ort.InferenceSession(model.SerializeToString(), build_session_options(1),
                                 providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    native = ort.InferenceSession(fused.SerializeToString(), native_session_options(library, 1),
                                  providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert native.dtype == plain.dtype and native.shape == plain.shape
    assert np.array_equal(native, plain)


def test_chains_that_cannot_be_fused_are_left_alone() -> None:
    shared = _graph("com.microsoft", np.array(3, np.uint8), 0.02, extra_reader=True)
    assert fuse_gelu_quantize(shared)[1] == 0
    tanh = _graph("", np.array(3, np.uint8), 0.02)
    tanh.graph.node[0].attribute.append(helper.make_attribute("approximate", "tanh"))
    assert fuse_gelu_quantize(tanh)[1] == 0


def test_without_the_library_the_fused_graph_does_not_open(library) -> None:
    """The fallback contract: a fused graph needs the library; the caller keeps the unfused graph otherwise."""
    fused, _ = fuse_gelu_quantize(_graph("com.microsoft", np.array(3, np.uint8), 0.02))
    with pytest.raises(Exception, match=r"GeluQuantizeLinear|kolite\.native"):
        ort.InferenceSession(fused.SerializeToString(), build_session_options(1), providers=["CPUExecutionProvider"])
