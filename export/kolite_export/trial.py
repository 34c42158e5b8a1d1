"""Build one variant's graph and hold it against the PyTorch original: the step export runs once per variant and
accuracy repair runs once per candidate recipe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kolite.errors import KoliteError
from kolite.manifest import Variant
from kolite.session import cpu_session

from kolite_export.artifact import file_ref
from kolite_export.errors import ValidationError
from kolite_export.validation import EncodedSet, evaluate_gate, onnx_outputs, served_outputs
from kolite_export.validation_data import ValidationSet
from kolite_export.variants import BuildContext, VariantSpec

__all__ = ["Trial", "Validator", "cpu_session"]


# ``cpu_session`` is the runtime's (kolite.session): every gate, repair trial and calibration pass opens its graph
# exactly as ``kolite.load`` does, so a gate figure is a served figure (tests/test_fidelity.py holds them equal).


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
    """What every trial is compared on: the PyTorch reference logits of the encoded validation texts.

    ``sequences`` are the runtime encoder's ids of the same texts: when given, every trial runs through the
    runtime's session and planner (``served_outputs``), so its gate numbers describe what ``kolite.load`` serves."""

    ctx: BuildContext
    reference: list[np.ndarray]
    encoded: EncodedSet
    data: ValidationSet
    sequences: tuple[tuple[int, ...], ...] | None = None

    def outputs(self, graph: Path | bytes, rows: list[int] | None = None) -> list[np.ndarray]:
        """Logits of ``graph`` per validation text (or per text of ``rows``), as served."""
        if self.sequences is None:
            texts = self.data.texts if rows is None else tuple(self.data.texts[i] for i in rows)
            from kolite_export.validation import encode_set

            encoded = self.encoded if rows is None else encode_set(self.ctx.checkpoint, texts)
            return onnx_outputs(cpu_session(graph), self.ctx.checkpoint, encoded)
        sequences = self.sequences if rows is None else tuple(self.sequences[i] for i in rows)
        return served_outputs(graph, sequences, self.ctx.checkpoint.pad_token_id)

    def check(self, spec: VariantSpec, graph: Path | bytes) -> tuple[str, dict[str, Any], list[np.ndarray] | None]:
        """Run ``graph`` on CPU over the validation set and apply ``spec``'s gate: (status, numbers, outputs)."""
        from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, RuntimeException
        from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

        outputs = None
        try:
            outputs = self.outputs(graph)
            numbers = evaluate_gate(spec.name, spec.gate, self.ctx.checkpoint, self.reference, outputs, self.data)
            return "passed", {**numbers, "validated_on": "CPUExecutionProvider"}, outputs
        except ValidationError as exc:
            return "failed", {**exc.numbers, "error": str(exc), "validated_on": "CPUExecutionProvider"}, outputs
        except (Fail, InvalidGraph, OrtNotImplemented, RuntimeException, KoliteError) as exc:
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
