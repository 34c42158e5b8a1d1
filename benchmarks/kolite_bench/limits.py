"""The physical limit: how many texts/s an int8 runtime could label if every int8 GEMM ran at a peak.

limit (texts/s) = GEMM peak (op/s) / (int8 ops per token × tokens per text), with tokens counted by kolite's own
encoder without padding (special tokens included, truncated to max_length). Attention score products (quadratic
in length), layer norms and softmax are left out, so the limit is optimistic: a true ceiling. Three peaks: the
measured one (the GEMM micro-benchmark, ``kolite_bench.gemm``, on 1 and on the bench's threads) and the CPU's
theoretical AVX-512 VNNI and AMX peaks (``kolite_bench.cpu_peak``). A pass's GEMM rate is its useful GEMM work
(real tokens only: padding is waste) over its seconds; its fraction of a peak is what the report shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["count_tokens", "encoder_gemm_shapes", "gemm_fraction", "gemm_mix_ceiling", "int8_ops_per_token",
           "limit_graph", "measure_physical_limit", "physical_limit", "token_lengths"]

# Fused attention ops (com.microsoft QAttention / Attention) hold the packed Q|K|V weight as input 1.
_INT8_GEMMS = {"MatMulInteger", "DynamicQuantizeMatMul", "QLinearMatMul", "MatMulIntegerToFloat", "QAttention"}
_FP32_GEMMS = {"MatMul", "Gemm", "FusedMatMul", "Attention"}


def _gemm_weights(onnx_path: str | Path) -> list[tuple[str, tuple[int, int]]]:
    """(kind, (K, N)) of every GEMM whose weight is an initializer; kind is "int8" or "fp32"."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    shapes = {init.name: tuple(int(d) for d in init.dims) for init in model.graph.initializer}
    # Static QDQ graphs feed weights through DequantizeLinear: its output has the int8 initializer's shape.
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in shapes:
            shapes[node.output[0]] = shapes[node.input[0]]
    found = []
    for node in model.graph.node:
        kind = "int8" if node.op_type in _INT8_GEMMS else "fp32" if node.op_type in _FP32_GEMMS else None
        weight_index = 3 if node.op_type == "QLinearMatMul" else 1
        if kind is None or len(node.input) <= weight_index:
            continue
        dims = shapes.get(node.input[weight_index])
        if dims and len(dims) == 2:
            found.append((kind, (dims[0], dims[1])))
    return found


def int8_ops_per_token(onnx_path: str | Path) -> dict[str, Any]:
    """2·K·N summed over the graph's GEMMs whose weight is an initializer (int8 ones if the graph is quantized).

    The sequence-classification head runs once per text, not per token; it is under 1% of the encoder and
    counted as per-token here (the limit stays an upper bound).
    """
    totals = {"int8": 0, "fp32": 0}
    for kind, (k, n) in _gemm_weights(onnx_path):
        totals[kind] += 2 * k * n
    return {"int8_ops_per_token": totals["int8"], "fp32_gemm_ops_per_token": totals["fp32"],
            "graph": Path(onnx_path).name}


def encoder_gemm_shapes(onnx_path: str | Path) -> list[tuple[int, int]]:
    """The (K, N) weight shapes repeated across layers (h×h, h×ffn, ffn×h): what the GEMM benchmark times."""
    counts = Counter(kn for _, kn in _gemm_weights(onnx_path))
    return sorted(kn for kn, c in counts.items() if c > 1)


def token_lengths(artifact: str | Path, texts: list[str]) -> list[int]:
    """Tokens kolite feeds the model for each text (its own encoder: normalization, truncation, special tokens)."""
    from kolite.manifest import load_manifest
    from kolite.tokenization import TextEncoder

    manifest = load_manifest(artifact)
    tokenizer_json = (Path(artifact) / manifest.tokenizer.file).read_text(encoding="utf-8")
    encoder = TextEncoder(tokenizer_json, manifest.max_length, manifest.truncation_side, manifest.normalization)
    lengths: list[int] = []
    for start in range(0, len(texts), 4096):
        lengths += encoder.encode(texts[start : start + 4096]).lengths.tolist()
    return lengths


def count_tokens(tokenizer_json: str | Path, texts: list[str], max_length: int) -> int:
    """Tokens the model actually sees (no padding), special tokens included, truncated at ``max_length``."""
    from kolite.tokenization import TextEncoder

    encoder = TextEncoder(Path(tokenizer_json).read_text(encoding="utf-8"), max_length)
    return sum(int(encoder.encode(texts[start : start + 4096]).lengths.sum()) for start in range(0, len(texts), 4096))


def gemm_fraction(ops_per_token: int, tokens: int, seconds: float, peak_gops: float | None) -> float | None:
    """The share of ``peak_gops`` a pass used on useful GEMM work (``tokens`` real tokens in ``seconds``)."""
    if not peak_gops or seconds <= 0:
        return None
    return ops_per_token * tokens / seconds / (peak_gops * 1e9)


def gemm_mix_ceiling(gemm: dict[str, Any]) -> dict[int, float]:
    """GOP/s of the encoder's own GEMM mix at each benchmarked token count M: one GEMM of every measured (K, N) per
    layer, each at its measured speed, so the time is the sum of ops/speed. What the GEMMs alone reach if nothing
    else in the model took time: the best share of the peak any runtime of these kernels could show at these shapes.
    """
    ops: dict[int, float] = {}
    seconds: dict[int, float] = {}
    for shape in gemm.get("shapes", []):
        if not shape.get("int8_gops"):
            continue
        work = 2.0 * shape["m"] * shape["k"] * shape["n"]
        ops[shape["m"]] = ops.get(shape["m"], 0.0) + work
        seconds[shape["m"]] = seconds.get(shape["m"], 0.0) + work / (shape["int8_gops"] * 1e9)
    return {m: ops[m] / seconds[m] / 1e9 for m in sorted(ops)}


def physical_limit(peak_gops: float, ops_per_token: int, total_tokens: int, n_texts: int) -> dict[str, Any]:
    seconds = total_tokens * ops_per_token / (peak_gops * 1e9) if peak_gops > 0 else float("inf")
    return {
        "total_tokens": total_tokens,
        "tokens_per_text": total_tokens / n_texts if n_texts else 0.0,
        "ops_per_token": ops_per_token,
        "total_int8_ops": total_tokens * ops_per_token,
        "peak_gops": peak_gops,
        "seconds_at_peak": seconds,
        "texts_per_s": n_texts / seconds if seconds else 0.0,
    }


LIMIT_GRAPHS = ("int8-static", "int8", "fp32-opt", "fp32")


def limit_graph(variants: Mapping[str, Any]) -> Any:
    """The variant whose GEMMs the limit counts: the served int8 graph first (an artifact may hold int8-static and
    fp32-opt only, all a bench needs), None when there is no CPU graph."""
    return next((variants[name] for name in LIMIT_GRAPHS if name in variants), None)


def measure_physical_limit(
    artifact: Path, threads: int, total_tokens: int, n_texts: int, seconds_per_shape: float = 0.3
) -> dict[str, Any]:
    """The GEMM micro-benchmark on 1 and ``threads`` threads at the model's shapes, the CPU's theoretical peaks, and
    the limit in texts/s of each for this data (``total_tokens`` over ``n_texts``)."""
    import os

    from kolite.manifest import load_manifest

    from kolite_bench.cpu_peak import int8_ops_per_cycle, measure_clock_ghz, theoretical_peaks
    from kolite_bench.env import cpu_family, cpu_flags, cpu_vendor, nominal_clock_ghz, physical_cores
    from kolite_bench.gemm import TOKEN_COUNTS, default_shapes, run_gemm_benchmark

    manifest = load_manifest(artifact)
    graph = limit_graph(manifest.variants)
    ops = int8_ops_per_token(artifact / graph.file) if graph else {"int8_ops_per_token": 0}
    # Every weight GEMM of the encoder counts, as if all ran at the int8 peak (GEMMs a recipe leaves in fp32 too).
    ops_per_token = ops["int8_ops_per_token"] + ops.get("fp32_gemm_ops_per_token", 0)
    layer_shapes = encoder_gemm_shapes(artifact / graph.file) if graph else []
    shapes = [(m, k, n) for m in TOKEN_COUNTS for k, n in layer_shapes] or default_shapes()
    by_threads = {str(t): run_gemm_benchmark(t, shapes, seconds_per_shape) for t in sorted({1, threads})}
    measured_ghz = measure_clock_ghz()
    nominal_ghz, nominal_source = nominal_clock_ghz()
    cores = min(threads, physical_cores() or os.cpu_count() or threads)
    core_peak = int8_ops_per_cycle(cpu_vendor(), cpu_family(), cpu_flags())
    theoretical = {**theoretical_peaks(cores, measured_ghz or nominal_ghz, core_peak), "measured_ghz": measured_ghz,
                   "nominal_ghz": nominal_ghz, "nominal_source": nominal_source,
                   "clock_used": "measured (scalar imul chain)" if measured_ghz else f"nominal ({nominal_source})"}
    gemm = by_threads[str(threads)]

    def limit(peak: float | None) -> dict[str, Any] | None:
        return physical_limit(peak, ops_per_token, total_tokens, n_texts) if peak else None

    return {"gemm": gemm, "gemm_by_threads": by_threads, "ops": ops, "theoretical": theoretical,
            "limit": limit(gemm["int8_peak_gops"]), "limit_vnni": limit(theoretical["vnni_peak_gops"]),
            "limit_amx": limit(theoretical["amx_peak_gops"])}
