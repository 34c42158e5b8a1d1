"""Activation ranges for static int8: what each quantized input of the float graph sees on real text.

The float graph runs on calibration batches with the tensors to quantize added as outputs. Only real tokens count:
padded positions are masked out (they never reach a logit, and a text alone has none). Two passes: the exact
min/max, then a histogram over it, from which a range is chosen (``choose_range``) and turned into the uint8
scale/zero point exactly as onnxruntime's DynamicQuantizeLinear would for that range (``uint8_params``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["RANGE_METHODS", "TensorStats", "choose_range", "collect_stats", "uint8_params"]

BINS = 4096
RANGE_METHODS = ("minmax", "percentile", "mse")


@dataclass(frozen=True)
class TensorStats:
    name: str
    minimum: float
    maximum: float
    histogram: np.ndarray  # BINS counts over [minimum, maximum]

    @property
    def centers(self) -> np.ndarray:
        edges = np.linspace(self.minimum, self.maximum, len(self.histogram) + 1)
        return (edges[:-1] + edges[1:]) / 2


def _real_tokens(value: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows of ``value`` that belong to real tokens: [batch, seq, ...] is masked, [batch, ...] kept whole."""
    if value.ndim >= 3 and value.shape[:2] == mask.shape:
        return value[mask.astype(bool)]
    return value


def _session_with_outputs(model_path: Path, tensors: Sequence[str]) -> object:
    import onnx
    from kolite.session import cpu_session

    model = onnx.load(str(model_path))
    present = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return cpu_session(model.SerializeToString())  # opened as the runtime opens graphs


def collect_stats(
    model_path: Path, tensors: Sequence[str], batches: Sequence[dict[str, np.ndarray]]
) -> dict[str, TensorStats]:
    """Min, max and a histogram of every tensor in ``tensors`` over the real tokens of ``batches``."""
    session = _session_with_outputs(model_path, tensors)
    names = list(tensors)

    def values() -> object:
        for feeds in batches:
            outputs = session.run(names, feeds)  # type: ignore[attr-defined]
            yield [_real_tokens(np.asarray(v, dtype=np.float32), feeds["attention_mask"]) for v in outputs]

    low = {n: np.inf for n in names}
    high = {n: -np.inf for n in names}
    for outputs in values():
        for name, value in zip(names, outputs, strict=True):
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
    counts = {n: np.zeros(BINS, dtype=np.int64) for n in names}
    for outputs in values():
        for name, value in zip(names, outputs, strict=True):
            counts[name] += np.histogram(value, bins=BINS, range=(low[name], high[name]))[0]
    return {n: TensorStats(n, low[n], high[n], counts[n]) for n in names}


def _percentile_range(stats: TensorStats, percentile: float) -> tuple[float, float]:
    cumulative = np.cumsum(stats.histogram) / max(stats.histogram.sum(), 1)
    edges = np.linspace(stats.minimum, stats.maximum, len(stats.histogram) + 1)
    tail = (100.0 - percentile) / 100.0
    low = edges[int(np.searchsorted(cumulative, tail, side="left"))]
    high = edges[int(np.searchsorted(cumulative, 1.0 - tail, side="left")) + 1]
    return float(low), float(high)


def _mse_range(stats: TensorStats, steps: int = 40) -> tuple[float, float]:
    """The clipping range with the least expected squared error: rounding noise (scale²/12) inside, the distance
    to the clip outside, over a grid of shrunk low and high ends."""
    centers, weights = stats.centers, stats.histogram.astype(np.float64)
    low0, high0 = min(stats.minimum, 0.0), max(stats.maximum, 0.0)
    fractions = np.linspace(0.2, 1.0, steps)
    best, best_error = (low0, high0), np.inf
    for low in low0 * fractions:
        highs = high0 * fractions
        scales = (highs - low) / 255.0
        below = np.clip(low - centers, 0, None)
        above = np.clip(centers[None, :] - highs[:, None], 0, None)
        inside = ((centers[None, :] >= low) & (centers[None, :] <= highs[:, None])) * (scales[:, None] ** 2 / 12)
        error = (weights[None, :] * (below[None, :] ** 2 + above**2 + inside)).sum(axis=1)
        i = int(np.argmin(error))
        if error[i] < best_error:
            best, best_error = (float(low), float(highs[i])), float(error[i])
    return best


def choose_range(stats: TensorStats, method: str, percentile: float = 99.999) -> tuple[float, float]:
    """The float range the uint8 grid will cover: ``minmax`` (every calibration value), ``percentile`` (both tails
    cut at ``percentile``), or ``mse`` (least squared quantization error on the calibration values)."""
    if method == "minmax":
        return stats.minimum, stats.maximum
    if method == "percentile":
        return _percentile_range(stats, percentile)
    if method == "mse":
        return _mse_range(stats)
    raise ValueError(f"range method {method!r} must be one of {', '.join(RANGE_METHODS)}")


def uint8_params(low: float, high: float) -> tuple[np.float32, np.uint8]:
    """Scale and zero point for [low, high] ∪ {0}, computed as onnxruntime's DynamicQuantizeLinear computes them."""
    low32, high32 = np.float32(min(low, 0.0)), np.float32(max(high, 0.0))
    scale = np.float32(1.0) if high32 == low32 else np.float32((high32 - low32) / np.float32(255))
    zero = np.float32(0) - low32 / scale
    return scale, np.uint8(np.rint(np.clip(zero, 0, 255)))
