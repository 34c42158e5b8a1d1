"""Build one variant's graph and hold it against the PyTorch original: the step export runs once per variant and
accuracy repair runs once per candidate recipe."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kolite.manifest import Variant

from kolite_export.artifact import file_ref
from kolite_export.errors import ValidationError
from kolite_export.validation import EncodedSet, evaluate_gate, onnx_outputs
from kolite_export.validation_data import ValidationSet
from kolite_export.variants import BuildContext, VariantSpec

__all__ = ["Trial", "Validator", "cpu_session"]


def cpu_session(graph: Path | bytes, threads: int | None = None) -> Any:
    """A CPU session on a graph file or a serialized graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    source = graph if isinstance(graph, bytes) else str(graph)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class Trial:
    """A built, validated graph: its manifest entry and its logits per validation text (None if it cannot run)."""

    variant: Variant
    outputs: list[np.ndarray] | None

    @property
    def failed_gate(self) -> bool:
        """It ran and missed its gate (numbers exist), as opposed to passing or not running at all."""
        return not self.variant.passed and self.outputs is not None


@dataclass(frozen=True)
class Validator:
    """What every trial is compared on: the PyTorch reference logits of the encoded validation texts."""

    ctx: BuildContext
    reference: list[np.ndarray]
    encoded: EncodedSet
    data: ValidationSet

    def check(self, spec: VariantSpec, graph: Path | bytes) -> tuple[str, dict[str, Any], list[np.ndarray] | None]:
        """Run ``graph`` on CPU over the validation set and apply ``spec``'s gate: (status, numbers, outputs)."""
        from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, RuntimeException
        from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

        outputs = None
        try:
            outputs = onnx_outputs(cpu_session(graph), self.ctx.checkpoint, self.encoded)
            numbers = evaluate_gate(spec.name, spec.gate, self.ctx.checkpoint, self.reference, outputs, self.data)
            return "passed", {**numbers, "validated_on": "CPUExecutionProvider"}, outputs
        except ValidationError as exc:
            return "failed", {**exc.numbers, "error": str(exc), "validated_on": "CPUExecutionProvider"}, outputs
        except (Fail, InvalidGraph, OrtNotImplemented, RuntimeException) as exc:
            # e.g. an fp16 graph whose ops have no CPU kernels: it could not be validated, so it is not served.
            message = str(exc).strip().splitlines()[0]
            return "failed", {"validated_on": "none", "error": f"cannot run on CPU to validate: {message}"}, None

    def trial(self, spec: VariantSpec, exclude_nodes: tuple[str, ...] = (), file: str | None = None) -> Trial:
        """Build ``spec`` (keeping ``exclude_nodes`` in float) into ``file`` (default: the variant's own file), run
        it on CPU over the validation set and apply its gate."""
        file = file or spec.file
        target = self.ctx.workdir / file
        recipe = spec.build(self.ctx, target, exclude_nodes) if exclude_nodes else spec.build(self.ctx, target)
        status, numbers, outputs = self.check(spec, target)
        ref = file_ref(self.ctx.workdir, file)
        variant = Variant(
            name=spec.name,
            file=spec.file,
            precision=spec.precision,
            sha256=ref.sha256,
            size_bytes=ref.size_bytes,
            providers=spec.providers,
            status=status,
            validation=numbers,
            recipe=recipe,
            rank=spec.rank,
            cpu_features=tuple(recipe.get("cpu_features", ())),
        )
        return Trial(variant, outputs)
