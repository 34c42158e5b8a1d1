"""One builder per variant, selected by name from a registry. Each writes its graph and returns its recipe."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolite_export.cpu import CpuFeatures
from kolite_export.layouts.base import LoadedCheckpoint
from kolite_export.recipes import CPU_SLOW_FUSIONS, DynamicQuantRecipe

__all__ = ["DEFAULT_VARIANTS", "VARIANTS", "BuildContext", "VariantSpec"]


@dataclass
class BuildContext:
    """What the builders share: the checkpoint, a scratch folder, the fp32 graph and the detected CPU."""

    checkpoint: LoadedCheckpoint
    workdir: Path
    cpu: CpuFeatures
    calibration_texts: tuple[str, ...] = ()
    calibration_source: str = ""
    dynamic_recipe: DynamicQuantRecipe | None = None
    _cache: dict[str, tuple[Path, dict[str, Any]]] = field(default_factory=dict)

    @property
    def fp32_path(self) -> Path:
        return self.workdir / "model.fp32.onnx"

    def optimized(self, cpu_kernels: bool = False) -> tuple[Path, dict[str, Any]]:
        """The fusion-optimized fp32 graph, built once: all fusions (fp32-opt, fp16) or, with ``cpu_kernels``,
        all but CPU_SLOW_FUSIONS (the int8 base graph)."""
        name = "fp32-opt-cpu" if cpu_kernels else "fp32-opt"
        if name not in self._cache:
            path = self.workdir / f"scratch.{name}.onnx"
            skipped = CPU_SLOW_FUSIONS if cpu_kernels else ()
            self._cache[name] = (path, _optimize(self.checkpoint, self.fp32_path, path, skipped))
        return self._cache[name]


# Fused op → the onnxruntime.transformers FusionOptions switches that create it.
_FUSION_SWITCHES = {
    "SkipLayerNormalization": ("enable_skip_layer_norm", "enable_bias_skip_layer_norm"),
    "BiasGelu": ("enable_bias_gelu",),
}


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


def build_fp32(ctx: BuildContext, target: Path) -> dict[str, Any]:
    from kolite_export.onnx_export import OPSET

    if ctx.fp32_path != target:
        shutil.copyfile(ctx.fp32_path, target)
    return {"exporter": "torch.onnx.export (TorchScript)", "opset": OPSET, "dynamic_axes": ["batch", "sequence"]}


def build_fp32_opt(ctx: BuildContext, target: Path) -> dict[str, Any]:
    path, recipe = ctx.optimized()
    shutil.copyfile(path, target)
    return dict(recipe)


def build_int8(ctx: BuildContext, target: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    recipe = ctx.dynamic_recipe or DynamicQuantRecipe.for_cpu(ctx.cpu)
    if recipe.base_graph == "fp32":
        base, fusions = ctx.fp32_path, {}
    else:
        base, optimized = ctx.optimized(cpu_kernels=recipe.base_graph == "fp32-opt-cpu")
        fusions = {"fused_ops": optimized["fused_ops"], "skipped_fusions": optimized["skipped_fusions"]}
    quantize_dynamic(
        base,
        target,
        op_types_to_quantize=list(recipe.op_types),
        per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=list(recipe.nodes_to_exclude) or None,
        # Fused contrib ops defeat shape inference; their outputs are float.
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return {**recipe.to_dict(), **fusions}


def build_fp16(ctx: BuildContext, target: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    path, opt_recipe = ctx.optimized()
    model = OnnxModel(onnx.load(str(path)))
    # fp32 inputs/outputs: callers keep feeding int64 ids and reading fp32 logits.
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(target))
    return {"converter": "onnxruntime.transformers float16", "keep_io_types": True, "base": opt_recipe}


def _build_int8_static(ctx: BuildContext, target: Path) -> dict[str, Any]:
    from kolite_export.static_int8 import build_int8_static  # batch-invariant int8: constant activation scales

    return build_int8_static(ctx, target)


@dataclass(frozen=True)
class VariantSpec:
    name: str
    precision: str
    providers: tuple[str, ...]
    build: Callable[[BuildContext, Path], dict[str, Any]]

    @property
    def file(self) -> str:
        return f"model.{self.name}.onnx"


_CPU_CUDA = ("CPUExecutionProvider", "CUDAExecutionProvider")
VARIANTS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        VariantSpec("fp32", "fp32", _CPU_CUDA, build_fp32),
        VariantSpec("fp32-opt", "fp32", _CPU_CUDA, build_fp32_opt),
        VariantSpec("int8", "int8", ("CPUExecutionProvider",), build_int8),
        VariantSpec("int8-static", "int8", ("CPUExecutionProvider",), _build_int8_static),
        VariantSpec("fp16", "fp16", ("CUDAExecutionProvider",), build_fp16),
    )
}
DEFAULT_VARIANTS = ("fp32", "fp32-opt", "int8")
