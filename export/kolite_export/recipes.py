"""Quantization recipes, chosen per CPU family (presets as classmethods returning frozen dataclasses).

Without VNNI, x86 int8 kernels multiply u8×s8 with ``vpmaddubsw``, whose 16-bit intermediate sums can saturate:
7-bit weights (``reduce_range``) avoid that. With VNNI (``vpdpbusd``, 32-bit sums) or on ARM the full 8-bit
range is safe and more accurate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from kolite_export.cpu import CpuFeatures

__all__ = ["CPU_SLOW_FUSIONS", "DynamicQuantRecipe", "StaticScaleRecipe"]

# Fusions whose onnxruntime CPU kernels are slower than the plain ops they replace (ORT 1.31, per call at batch 32 on
# the 000 model: SkipLayerNormalization ≈ 1.1 ms vs Add + LayerNormalization ≈ 0.27 ms; BiasGelu ≈ 1.0 ms vs Gelu
# ≈ 0.56 ms once the bias rides in the int8 MatMul). The int8 graph is built without them; the kolite runtime
# keeps onnxruntime from re-creating them (kolite.session.CPU_DISABLED_OPTIMIZERS). benchmarks/results/levers.md
CPU_SLOW_FUSIONS = ("SkipLayerNormalization", "BiasGelu")
_BASE_GRAPHS = ("fp32", "fp32-opt", "fp32-opt-cpu")


@dataclass(frozen=True)
class DynamicQuantRecipe:
    per_channel: bool
    reduce_range: bool
    op_types: tuple[str, ...]
    # Quantize the fusion-optimized graph (MatMul and fused Attention become integer ops), the same without the
    # fusions that are slow on CPU (fp32-opt-cpu: see CPU_SLOW_FUSIONS), or the plain fp32 one.
    base_graph: str = "fp32-opt-cpu"
    cpu_family: str = "generic"
    nodes_to_exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.base_graph not in _BASE_GRAPHS:
            raise ValueError(f"base_graph {self.base_graph!r} must be one of {', '.join(_BASE_GRAPHS)}")
        if not self.op_types:
            raise ValueError("op_types is empty")

    @classmethod
    def for_cpu(cls, cpu: CpuFeatures) -> DynamicQuantRecipe:
        full_range = cpu.family in ("x86-vnni", "arm64")
        return cls(
            per_channel=True,
            reduce_range=not full_range,
            op_types=("MatMul", "Attention"),
            cpu_family=cpu.family,
        )

    def with_changes(self, **changes: Any) -> DynamicQuantRecipe:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["op_types"] = list(self.op_types)
        data["nodes_to_exclude"] = list(self.nodes_to_exclude)
        data["method"] = "dynamic"
        return data


@dataclass(frozen=True)
class StaticScaleRecipe:
    """int8 with calibrated constant activation scales in the dynamic variant's fused integer kernels
    (kolite_export.static_int8): batch-invariant logits. Weights as the dynamic recipe quantizes them."""

    per_channel: bool = True
    reduce_range: bool = False
    op_types: tuple[str, ...] = ("MatMul", "Attention")
    base_graph: str = "fp32-opt-cpu"
    # Activation ranges: method (activation_ranges.RANGE_METHODS) over the real tokens of calibration texts
    # that are never validation texts (kolite_export.calibration.calibration_texts).
    range_method: str = "percentile"
    percentile: float = 99.999
    calibration_texts: int = 512
    calibration_batch_size: int = 32
    smoothing: str = "none"
    cpu_family: str = "generic"
    nodes_to_exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.base_graph not in _BASE_GRAPHS:
            raise ValueError(f"base_graph {self.base_graph!r} must be one of {', '.join(_BASE_GRAPHS)}")

    @classmethod
    def for_cpu(cls, cpu: CpuFeatures) -> StaticScaleRecipe:
        return cls(reduce_range=cpu.family not in ("x86-vnni", "arm64"), cpu_family=cpu.family)

    def with_changes(self, **changes: Any) -> StaticScaleRecipe:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["op_types"] = list(self.op_types)
        data["nodes_to_exclude"] = list(self.nodes_to_exclude)
        data["method"] = "static-scales"
        # The u8×s8 kernels use the full 8-bit range only where the CPU sums in 32 bits (VNNI, ARM dot products).
        data["assumes_cpu"] = "vnni or arm64" if not self.reduce_range else "any"
        return data
