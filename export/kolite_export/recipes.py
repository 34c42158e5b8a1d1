"""Quantization recipes, chosen per CPU family (presets as classmethods returning frozen dataclasses).

Without VNNI, x86 int8 kernels multiply u8×s8 with ``vpmaddubsw``, whose 16-bit intermediate sums can saturate:
7-bit weights (``reduce_range``) avoid that. With VNNI (``vpdpbusd``, 32-bit sums) or on ARM the full 8-bit
range is safe and more accurate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kolite_export.cpu import CpuFeatures

__all__ = [
    "CPU_SLOW_FUSIONS",
    "ERROR_FLOAT_BUDGET",
    "ERROR_FLOAT_PASS",
    "DynamicQuantRecipe",
    "StaticScaleRecipe",
    "assumed_cpu_features",
    "full_range_on",
]

# Fusions whose onnxruntime CPU kernels are slower than the plain ops they replace (ORT 1.31, per call at batch 32 on
# the 000 model: SkipLayerNormalization ≈ 1.1 ms vs Add + LayerNormalization ≈ 0.27 ms; BiasGelu ≈ 1.0 ms vs Gelu
# ≈ 0.56 ms once the bias rides in the int8 MatMul). The int8 graph is built without them; the kolite runtime
# keeps onnxruntime from re-creating them (kolite.session.CPU_DISABLED_OPTIMIZERS). benchmarks/results/levers.md
CPU_SLOW_FUSIONS = ("SkipLayerNormalization", "BiasGelu")
_BASE_GRAPHS = ("fp32", "fp32-opt", "fp32-opt-cpu")
# int8-static, per task: the share of the quantizable weights (≈ int8 GEMM work per token) that may go back to float
# once the gate passes, spent greedily on the int8-vs-float logit tail that sets the guard's τ
# (``kolite_export.error_ranking``). NER: 0.5 %, room for small nodes only — on 004 the embedding projection and the
# classifier (0.43 %): τ 0.29 → 0.23 and token-margin re-runs 46 % → 41 % at no measurable unguarded cost. The next
# nodes the error points at are whole FFN layers (2.8 % each): 4 nodes halve τ but cost 9 % unguarded speed, which
# every NER user pays (the guard is off by default for NER) for a guarded gain few get. A budget rather than a count
# because the search's second pick on 128 rows can be an FFN layer as well as the classifier (the tail is a max).
# Classifiers: none (000's guard already re-runs ~2 %).
# benchmarks/results/ner-error-curve-004.json, docs/guides/fidelity.md
ERROR_FLOAT_BUDGET = {"token-classification": 0.005}
ERROR_FLOAT_PASS = 1  # recorded in the recipe: artifacts built before this pass existed are rebuilt


def assumed_cpu_features(reduce_range: bool) -> tuple[str, ...]:
    """CPU features (names of ``kolite.cpu_features``) the serving CPU needs for an int8 graph to be exact: the full
    8-bit range needs VNNI on x86 (or an ARM CPU); 7-bit weights are safe everywhere."""
    return () if reduce_range else ("vnni",)


def full_range_on(cpu: CpuFeatures) -> bool:
    """Whether int8 weights may use the full 8-bit range on ``cpu`` (see the module docstring)."""
    return cpu.family in ("x86-vnni", "arm64")


class _RecipeRecord:
    """What every quantization recipe writes to the manifest."""

    method = ""
    reduce_range: bool

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]
        data.update({key: list(value) for key, value in data.items() if isinstance(value, tuple)})
        data["method"] = self.method
        data["cpu_features"] = list(assumed_cpu_features(self.reduce_range))
        return data

    def chosen_for_cpu(self) -> dict[str, Any]:
        """The fields the CPU decides (an artifact whose recipe differs in any is rebuilt); ``nodes_to_exclude`` is
        chosen per model by accuracy repair."""
        data = self.to_dict()
        del data["nodes_to_exclude"]
        return data


@dataclass(frozen=True)
class DynamicQuantRecipe(_RecipeRecord):
    method = "dynamic"
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
    def for_cpu(cls, cpu: CpuFeatures, nodes_to_exclude: tuple[str, ...] = ()) -> DynamicQuantRecipe:
        return cls(
            per_channel=True,
            reduce_range=not full_range_on(cpu),
            op_types=("MatMul", "Attention"),
            cpu_family=cpu.family,
            nodes_to_exclude=nodes_to_exclude,
        )


@dataclass(frozen=True)
class StaticScaleRecipe(_RecipeRecord):
    """int8 with calibrated constant activation scales in the dynamic variant's fused integer kernels
    (``kolite_export.static_int8``): batch-invariant logits. Weights as the dynamic recipe quantizes them."""

    method = "static-scales"
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
    def for_cpu(cls, cpu: CpuFeatures, nodes_to_exclude: tuple[str, ...] = ()) -> StaticScaleRecipe:
        return cls(reduce_range=not full_range_on(cpu), cpu_family=cpu.family, nodes_to_exclude=nodes_to_exclude)

    def dynamic(self) -> DynamicQuantRecipe:
        """The dynamic recipe whose graph this one gives constant scales (same weights, same excluded nodes)."""
        return DynamicQuantRecipe(
            per_channel=self.per_channel,
            reduce_range=self.reduce_range,
            op_types=self.op_types,
            base_graph=self.base_graph,
            cpu_family=self.cpu_family,
            nodes_to_exclude=self.nodes_to_exclude,
        )
