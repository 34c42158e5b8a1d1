"""The physical limit: how many texts/s an int8 runtime could label if every int8 GEMM ran at the measured peak.

limit (texts/s) = GEMM peak (op/s) / (int8 ops per token × tokens per text), with tokens counted by the model's
own tokenizer without padding (special tokens included, truncated to max_length). Attention score products
(fp32, quadratic in length), layer norms and softmax are left out, so the limit is optimistic: a true ceiling.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["count_tokens", "encoder_gemm_shapes", "int8_ops_per_token", "physical_limit"]

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


def count_tokens(tokenizer_json: str | Path, texts: list[str], max_length: int) -> int:
    """Tokens the model actually sees (no padding), special tokens included, truncated at ``max_length``."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    total = 0
    for start in range(0, len(texts), 4096):
        total += sum(len(e.ids) for e in tokenizer.encode_batch(texts[start : start + 4096]))
    return total


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
