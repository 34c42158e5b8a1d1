"""kolite itself: ``kolite.load(artifact, variant=...)`` — the torch-free runtime with its own length bucketing.

Every pass goes through the public API as a user's code would: ``model.logits`` / ``model.tag`` with
``batch_size`` = the bench's. The bench's threads reach kolite through whichever keywords ``kolite.load`` accepts
(read from its signature): the intra-op threads, and the size of a data-parallel mode (N one-thread sessions over
whole batches) where kolite has one, so kolite never uses more cores than the other contenders.
"""

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
_PARALLEL_KWARGS = ("parallel", "sessions", "parallel_sessions", "workers")


class KoliteContender(Contender):
    @property
    def variant(self) -> str:
        return self.spec.options["variant"]

    def load(self) -> None:
        import kolite

        kwargs: dict[str, Any] = {"variant": self.variant, "device": "cpu"}
        accepted = inspect.signature(kolite.load).parameters
        guard = bool(self.spec.options.get("guard", False))
        if "guard" in accepted:
            # Explicitly on or off (never the artifact's auto default), so a row's name says what ran.
            kwargs["guard"] = guard
        elif guard:
            raise RuntimeError(f"{self.spec.name}: this kolite has no fidelity guard (kolite.load takes no 'guard')")
        self.thread_kwarg = next((k for k in _THREAD_KWARGS if k in accepted), None)
        if self.thread_kwarg is not None:
            kwargs[self.thread_kwarg] = self.spec.threads
        self.parallel_kwarg = next((k for k in _PARALLEL_KWARGS if k in accepted), None)
        if self.parallel_kwarg is not None:
            # An on/off switch gets "on" (kolite sizes it from the threads above); a count gets the bench's threads.
            flag = isinstance(accepted[self.parallel_kwarg].default, bool)
            kwargs[self.parallel_kwarg] = True if flag else self.spec.threads
        self.model = kolite.load(self.spec.artifact, **kwargs)

    def predict(self, texts: list[str]) -> Outputs:
        if self.spec.task == "token-classification":
            return [[(e.start, e.end, e.label) for e in ents] for ents in self.model.tag(texts, aggregation="simple")]
        return np.asarray(self.model.logits(texts, batch_size=max(1, len(texts)))).argmax(-1).astype(np.int64)

    def predict_all(
        self, texts: list[str], batch_size: int, progress: Callable[[int], None] | None = None
    ) -> Outputs:
        """Multi-batch calls of up to CHUNK_TEXTS texts: kolite sorts each by length and pads per batch."""
        chunk_texts = max(batch_size, CHUNK_TEXTS // batch_size * batch_size)
        parts = []
        for start in range(0, len(texts), chunk_texts):
            chunk = texts[start : start + chunk_texts]
            if self.spec.task == "token-classification":
                ents = self.model.tag(chunk, aggregation="simple", batch_size=batch_size)
                parts.append([[(e.start, e.end, e.label) for e in row] for row in ents])
            else:
                parts.append(np.asarray(self.model.logits(chunk, batch_size=batch_size)).argmax(-1).astype(np.int64))
            if progress is not None:
                progress(len(chunk))
        return concat_outputs(parts, self.spec.task)

    def run_pass(self, batches: list[list[str]], sorted_by_length: bool) -> Outputs:
        """Sorted: the batches' texts in one multi-batch call (kolite's planner re-forms exactly these batches, and a
        data-parallel mode can spread them); file order: one call per batch, so kolite pads the same batches as
        everyone else."""
        if not sorted_by_length:
            return self.predict_batches(batches)
        return self.predict_all([text for batch in batches for text in batch], len(batches[0]))

    def model_bytes(self) -> int:
        size = int(self.model.variant.size_bytes)
        guard = self.model.guard
        if guard is not None:  # the guard loads the float graph too
            size += int(self.model.manifest.variants[guard.record.float_variant].size_bytes)
        return size

    def counters(self) -> dict[str, int]:
        guard = self.model.guard
        return {} if guard is None else {"rows_checked": guard.rows_checked, "rows_rerun": guard.rows_rerun}

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
            "parallel_kwarg": self.parallel_kwarg,
            "provider": "CPUExecutionProvider",
            "guard": None if self.model.guard is None else {
                "tau": self.model.guard.tau, "float_variant": self.model.guard.record.float_variant,
                "rerun_fraction_at_export": self.model.guard.record.rerun_fraction},
        }
