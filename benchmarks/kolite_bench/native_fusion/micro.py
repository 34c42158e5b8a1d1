"""Op-level ceiling of the fusion: ORT's Gelu, its QuantizeLinear, both, and the fused kernel on one activation.

    python -m kolite_bench.native_fusion.micro --out benchmarks/results/native-fusion.json

One float tensor shaped like KoELECTRA-small's feed-forward activation at batch 32 (32 × 48 tokens × 1024), four
one-thread sessions, the best of ``--rounds`` rounds of ``--calls`` calls each, by thread CPU. Writes the entry
``op_level`` of ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]


def _model(nodes: list[Any], outputs: list[Any], initializers: list[Any]) -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "t", 1024])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    graph = helper.make_graph(nodes, "micro", [x], outputs, initializers)
    return helper.make_model(graph, opset_imports=opsets, ir_version=9).SerializeToString()


def main(argv: list[str] | None = None) -> int:
    import onnx
    import onnxruntime as ort
    from kolite.session import build_session_options
    from onnx import TensorProto, helper, numpy_helper

    from kolite_bench.native_fusion.ab import _cpu_model
    from kolite_bench.native_fusion.build import build_library
    from kolite_bench.native_fusion.rewrite import fuse_gelu_quantize, native_session_options

    parser = argparse.ArgumentParser(prog="python -m kolite_bench.native_fusion.micro", description=__doc__)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    inits = [numpy_helper.from_array(np.array(0.02, np.float32), "s"),
             numpy_helper.from_array(np.array(130, np.uint8), "z")]
    q = helper.make_tensor_value_info("q", TensorProto.UINT8, ["b", "t", 1024])
    g = helper.make_tensor_value_info("g", TensorProto.FLOAT, ["b", "t", 1024])
    gelu = helper.make_node("Gelu", ["x"], ["g"], domain="com.microsoft")
    chain = _model([gelu, helper.make_node("QuantizeLinear", ["g", "s", "z"], ["q"])], [q], inits)
    fused, _ = fuse_gelu_quantize(onnx.load_from_string(chain))
    sessions = {
        "gelu": ort.InferenceSession(_model([gelu], [g], []), build_session_options(1)),
        "quantize_linear": ort.InferenceSession(
            _model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])], [q], inits), build_session_options(1)),
        "gelu_then_quantize_linear": ort.InferenceSession(chain, build_session_options(1)),
        "fused": ort.InferenceSession(fused.SerializeToString(), native_session_options(build_library(), 1)),
    }
    x = np.random.default_rng(0).normal(0.0, 2.0, (32, args.tokens, 1024)).astype(np.float32)
    best: dict[str, float] = {}
    for name, session in sessions.items():
        session.run(None, {"x": x})
        rounds = []
        for _ in range(args.rounds):
            start = time.thread_time()
            for _ in range(args.calls):
                session.run(None, {"x": x})
            rounds.append((time.thread_time() - start) / args.calls)
        best[name] = round(min(rounds) * 1e3, 4)
        print(f"{name:26s} {best[name]:.3f} ms per call", flush=True)
    entry = {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": _cpu_model(),
             "load_avg_start": [round(v, 2) for v in load_start],
             "load_avg_end": [round(v, 2) for v in os.getloadavg()], "shape": list(x.shape),
             "best_ms_per_call": best,
             "chain_over_fused": round(best["gelu_then_quantize_linear"] / best["fused"], 4)}
    report = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    report["op_level"] = entry
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
