"""kolite itself: ``kolite.load(artifact, variant=...)`` — the torch-free runtime with its own length bucketing."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from kolite_bench.contenders.base import Contender, Outputs, concat_outputs

__all__ = ["KoliteContender"]

# The whole-set pass hands kolite this many texts per call; kolite sorts them by length and pads per batch.
CHUNK_TEXTS = 4096
_THREAD_KWARGS = ("threads", "intra_op_num_threads", "num_threads")


class KoliteContender(Contender):
    @property
    def variant(self) -> str:
        return self.spec.options["variant"]

    def load(self) -> None:
        import kolite

        kwargs: dict[str, Any] = {"variant": self.variant, "device": "cpu"}
        accepted = inspect.signature(kolite.load).parameters
        self.thread_kwarg = next((k for k in _THREAD_KWARGS if k in accepted), None)
        if self.thread_kwarg is not None:
            kwargs[self.thread_kwarg] = self.spec.threads
        self.model = kolite.load(self.spec.artifact, **kwargs)

    def predict(self, texts: list[str]) -> Outputs:
        if self.spec.task == "token-classification":
            return [[(e.start, e.end, e.label) for e in ents] for ents in self.model.tag(texts, aggregation="simple")]
        return np.asarray(self.model.logits(texts, batch_size=max(1, len(texts)))).argmax(-1).astype(np.int64)

    def predict_all(
        self, texts: list[str], batch_size: int, progress: Callable[[int], None] | None = None
    ) -> Outputs:
        parts = []
        for start in range(0, len(texts), CHUNK_TEXTS):
            chunk = texts[start : start + CHUNK_TEXTS]
            if self.spec.task == "token-classification":
                ents = self.model.tag(chunk, aggregation="simple", batch_size=batch_size)
                parts.append([[(e.start, e.end, e.label) for e in row] for row in ents])
            else:
                parts.append(np.asarray(self.model.logits(chunk, batch_size=batch_size)).argmax(-1).astype(np.int64))
            if progress is not None:
                progress(len(chunk))
        return concat_outputs(parts, self.spec.task)

    def model_bytes(self) -> int:
        return int(self.model.variant.size_bytes)

    def describe(self) -> dict[str, Any]:
        variant = self.model.variant
        return {
            "stack": "kolite (onnxruntime + tokenizers, no torch)",
            "variant": variant.name,
            "precision": variant.precision,
            "file": variant.file,
            "recipe": variant.recipe,
            "gate": variant.status,
            # Accuracy repair: the quantized nodes kept in float and their share of the int8 GEMM work.
            "float_nodes": len(variant.recipe.get("repair", {}).get("float_nodes", [])),
            "float_weight_fraction": variant.recipe.get("repair", {}).get("float_weight_fraction", 0.0),
            "batching": f"kolite length bucketing (sort by length, pad per batch) over chunks of {CHUNK_TEXTS} texts",
            "threads": self.spec.threads if self.thread_kwarg else "kolite default",
            "thread_kwarg": self.thread_kwarg,
            "provider": "CPUExecutionProvider",
        }
