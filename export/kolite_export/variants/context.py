"""``BuildContext``: what every variant builder shares — the checkpoint, a scratch folder, the CPU, calibration
texts and the fusion-optimized graphs (built once per export, whoever asks first)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kolite_export.cpu import CpuFeatures
from kolite_export.recipes import CPU_SLOW_FUSIONS

if TYPE_CHECKING:
    from kolite_export.layouts.base import LoadedCheckpoint

__all__ = ["BuildContext"]

# Fused op → the onnxruntime.transformers FusionOptions switches that create it.
_FUSION_SWITCHES = {
    "SkipLayerNormalization": ("enable_skip_layer_norm", "enable_bias_skip_layer_norm"),
    "BiasGelu": ("enable_bias_gelu",),
}


@dataclass
class BuildContext:
    checkpoint: LoadedCheckpoint
    workdir: Path
    cpu: CpuFeatures
    calibration_texts: tuple[str, ...] = ()
    calibration_source: str = ""  # where the calibration texts came from (recorded in static recipes)
    _cache: dict[str, tuple[Path, dict[str, Any]]] = field(default_factory=dict)

    @property
    def fp32_path(self) -> Path:
        return self.workdir / "model.fp32.onnx"

    def optimized(self, cpu_kernels: bool = False) -> tuple[Path, dict[str, Any]]:
        """The fusion-optimized fp32 graph, built once: all fusions or, with ``cpu_kernels``, all but
        CPU_SLOW_FUSIONS (whose ONNX Runtime CPU kernels are slower than the plain ops)."""
        name = "fp32-opt-cpu" if cpu_kernels else "fp32-opt"
        if name not in self._cache:
            path = self.workdir / f"scratch.{name}.onnx"
            skipped = CPU_SLOW_FUSIONS if cpu_kernels else ()
            self._cache[name] = (path, _optimize(self.checkpoint, self.fp32_path, path, skipped))
        return self._cache[name]


def _optimize(
    checkpoint: LoadedCheckpoint, source: Path, target: Path, skipped: tuple[str, ...] = ()
) -> dict[str, Any]:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    fusion_options = FusionOptions(checkpoint.optimizer_model_type)
    for op in skipped:
        for switch in _FUSION_SWITCHES[op]:
            setattr(fusion_options, switch, False)
    model = optimize_model(
        str(source),
        model_type=checkpoint.optimizer_model_type,
        num_heads=checkpoint.num_heads,
        hidden_size=checkpoint.hidden_size,
        optimization_options=fusion_options,
        opt_level=1,  # portable graph rewrites only; level 2+ would bake this CPU's layouts into the file
        use_gpu=False,
    )
    fused = {op: int(n) for op, n in model.get_fused_operator_statistics().items() if n}
    model.save_model_to_file(str(target))
    return {
        "optimizer": "onnxruntime.transformers.optimizer",
        "model_type": checkpoint.optimizer_model_type,
        "num_heads": checkpoint.num_heads,
        "hidden_size": checkpoint.hidden_size,
        "opt_level": 1,
        "fused_ops": fused,
        "skipped_fusions": list(skipped),
    }
