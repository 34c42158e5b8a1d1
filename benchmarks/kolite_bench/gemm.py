"""GEMM micro-benchmark: ONNX Runtime's int8 MatMulInteger (u8 × s8, as dynamic quantization emits) at transformer
shapes on N threads → GOP/s. Its peak bounds what any int8 runtime can reach on this CPU (the "physical limit").

``python -m kolite_bench.gemm --threads 2`` prints a table; ``kolite bench`` records it with every run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["GemmShape", "default_shapes", "main", "measure_gemm", "run_gemm_benchmark"]

GemmShape = tuple[int, int, int]  # (M tokens, K in, N out)
TOKEN_COUNTS = (128, 512, 2048)  # batch 32 × 4, 16, 64 tokens


def default_shapes(hidden: int = 256, ffn: int = 1024, tokens: Sequence[int] = TOKEN_COUNTS) -> list[GemmShape]:
    """The encoder's GEMMs: QKV/output projections [h×h], FFN up [h×ffn] and down [ffn×h]."""
    return [(m, k, n) for m in tokens for k, n in ((hidden, hidden), (hidden, ffn), (ffn, hidden))]


def _session(k: int, n: int, precision: str, threads: int) -> Any:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if precision == "int8":
        weight = numpy_helper.from_array(rng.integers(-127, 128, size=(k, n), dtype=np.int8), "B")
        zero = numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero")
        node = helper.make_node("MatMulInteger", ["A", "B", "a_zero"], ["Y"])
        inputs = [helper.make_tensor_value_info("A", TensorProto.UINT8, ["M", k])]
        output = helper.make_tensor_value_info("Y", TensorProto.INT32, ["M", n])
        initializers = [weight, zero]
    elif precision == "dq-int8":
        # What ORT runs for a dynamically quantized MatMul: quantize A, u8×s8 GEMM, dequantize — fp32 in and out.
        weight = numpy_helper.from_array(rng.integers(-127, 128, size=(k, n), dtype=np.int8), "B")
        scale = numpy_helper.from_array(np.array(0.01, dtype=np.float32), "b_scale")
        node = helper.make_node("DynamicQuantizeMatMul", ["A", "B", "b_scale"], ["Y"], domain="com.microsoft")
        inputs = [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["M", k])]
        output = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["M", n])
        initializers = [weight, scale]
    else:
        weight = numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32), "B")
        node = helper.make_node("MatMul", ["A", "B"], ["Y"])
        inputs = [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["M", k])]
        output = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["M", n])
        initializers = [weight]
    graph = helper.make_graph([node], "gemm", inputs, [output], initializer=initializers)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def measure_gemm(shape: GemmShape, threads: int, precision: str = "int8", min_seconds: float = 0.3) -> float:
    """Median GOP/s (2·M·K·N per call) of one GEMM shape."""
    m, k, n = shape
    session = _session(k, n, precision, threads)
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, size=(m, k), dtype=np.uint8) if precision == "int8" else rng.standard_normal(
        (m, k), dtype=np.float32
    )
    feed = {"A": a}
    for _ in range(3):
        session.run(None, feed)
    times = []
    deadline = time.perf_counter() + min_seconds
    while len(times) < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return 2 * m * k * n / float(np.median(times)) / 1e9


def run_gemm_benchmark(
    threads: int, shapes: Sequence[GemmShape] | None = None, min_seconds: float = 0.3, fp32: bool = True
) -> dict[str, Any]:
    """int8 (and fp32 for comparison) GOP/s per shape; ``int8_peak_gops`` is the best int8 shape."""
    shapes = list(shapes or default_shapes())
    rows = []
    for shape in shapes:
        row: dict[str, Any] = {"m": shape[0], "k": shape[1], "n": shape[2],
                               "int8_gops": measure_gemm(shape, threads, "int8", min_seconds),
                               "dq_int8_gops": measure_gemm(shape, threads, "dq-int8", min_seconds)}
        if fp32:
            row["fp32_gflops"] = measure_gemm(shape, threads, "fp32", min_seconds)
        rows.append(row)
    peak = max(rows, key=lambda r: r["int8_gops"])
    return {
        "op": "MatMulInteger (uint8 activations x int8 weights, int32 out), onnxruntime CPUExecutionProvider",
        "dq_op": "com.microsoft DynamicQuantizeMatMul (fp32 in/out: quantize + int8 GEMM + dequantize)",
        "threads": threads,
        "shapes": rows,
        "int8_peak_gops": peak["int8_gops"],
        "int8_peak_shape": [peak["m"], peak["k"], peak["n"]],
        "int8_median_gops": float(np.median([r["int8_gops"] for r in rows])),
        "dq_int8_peak_gops": max(r["dq_int8_gops"] for r in rows),
        "fp32_peak_gflops": max((r.get("fp32_gflops", 0.0) for r in rows), default=0.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--ffn", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=0.3, help="minimum timing per shape")
    args = parser.parse_args(argv)
    result = run_gemm_benchmark(args.threads, default_shapes(args.hidden, args.ffn), args.seconds)
    print(f"{'M':>6} {'K':>6} {'N':>6} {'int8 GOP/s':>11} {'DQ-int8 GOP/s':>14} {'fp32 GFLOP/s':>13}")
    for r in result["shapes"]:
        print(f"{r['m']:>6} {r['k']:>6} {r['n']:>6} {r['int8_gops']:>11.1f} {r['dq_int8_gops']:>14.1f}"
              f" {r['fp32_gflops']:>13.1f}")
    print(f"int8 peak: {result['int8_peak_gops']:.1f} GOP/s at {result['int8_peak_shape']} on {args.threads} threads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
