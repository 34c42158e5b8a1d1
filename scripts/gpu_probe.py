"""First call on a lent GPU machine: does the carried onnxruntime-gpu start its CUDA provider with kolite's
options, and do its kernels (MatMul, LayerNormalization, Softmax, Gelu; fp32 and fp16) match numpy?"""

from __future__ import annotations

import sys
import time

import numpy as np


def graph(dtype: int, weight: np.ndarray) -> bytes:
    """x @ weight → LayerNormalization → Gelu → Softmax, in ``dtype`` (onnx TensorProto FLOAT or FLOAT16)."""
    from onnx import TensorProto, helper

    np_dtype = np.float16 if dtype == TensorProto.FLOAT16 else np.float32
    x = helper.make_tensor_value_info("x", dtype, [None, 64])
    y = helper.make_tensor_value_info("y", dtype, [None, 64])
    w = helper.make_tensor("w", dtype, [64, 64], weight.astype(np_dtype).tobytes(), raw=True)
    s = helper.make_tensor("s", dtype, [64], np.ones(64, np_dtype).tobytes(), raw=True)
    b = helper.make_tensor("b", dtype, [64], np.zeros(64, np_dtype).tobytes(), raw=True)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("LayerNormalization", ["m", "s", "b"], ["n"], axis=-1),
             helper.make_node("Gelu", ["n"], ["g"]),
             helper.make_node("Softmax", ["g"], ["y"], axis=-1)]
    model = helper.make_model(helper.make_graph(nodes, "probe", [x], [y], [w, s, b]),
                              opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    return model.SerializeToString()


def main() -> int:
    import onnxruntime as ort
    from kolite.providers import resolve_device
    from onnx import TensorProto

    start = time.perf_counter()
    try:
        ort.preload_dlls()
    except Exception as exc:
        print("preload_dlls failed:", exc)
    print("onnxruntime", ort.__version__, ort.get_available_providers())
    spec = resolve_device("cuda")
    ok = True
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((64, 64)).astype(np.float16).astype(np.float32)  # exact in both precisions
    x = rng.standard_normal((32, 64)).astype(np.float16).astype(np.float32)
    reference = ort.InferenceSession(graph(TensorProto.FLOAT, weight), providers=["CPUExecutionProvider"])
    cpu = reference.run(None, {"x": x})[0]
    for dtype, tol in ((TensorProto.FLOAT, 1e-4), (TensorProto.FLOAT16, 2e-2)):
        session = ort.InferenceSession(graph(dtype, weight), providers=list(spec.providers),
                                       provider_options=[dict(o) for o in spec.provider_options])
        np_dtype = np.float16 if dtype == TensorProto.FLOAT16 else np.float32
        got = session.run(None, {"x": x.astype(np_dtype)})[0].astype(np.float32)
        delta = float(np.abs(got - cpu).max())
        print(f"dtype {dtype}: providers {session.get_providers()}, max |cuda - cpu| = {delta:.2e}")
        ok &= session.get_providers()[0] == "CUDAExecutionProvider" and delta < tol
    print(f"probe {'OK' if ok else 'FAILED'} in {time.perf_counter() - start:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
