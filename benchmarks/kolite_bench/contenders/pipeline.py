"""The transformers ``pipeline(...)`` (pads each batch to its longest text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from kolite_bench.contenders.base import Contender, Outputs, concat_outputs
from kolite_bench.contenders.torch_original import model_files_bytes

__all__ = ["PipelineContender"]


class PipelineContender(Contender):
    def load(self) -> None:
        import torch
        from transformers import pipeline

        torch.set_num_threads(self.spec.threads)
        kwargs: dict[str, Any] = {"device": -1}
        if self.spec.task == "token-classification":
            kwargs["aggregation_strategy"] = "simple"
        self.pipe = pipeline(self.spec.task, model=self.spec.source, tokenizer=self.spec.source, **kwargs)
        self.label2id = {label: int(i) for i, label in self.pipe.model.config.id2label.items()}

    def _run(self, texts: list[str], batch_size: int) -> Outputs:
        if self.spec.task == "token-classification":
            results = self.pipe(texts, batch_size=batch_size)
            return [[(int(e["start"]), int(e["end"]), str(e["entity_group"])) for e in ents] for ents in results]
        results = self.pipe(texts, batch_size=batch_size, truncation=True, max_length=self.spec.max_length)
        return np.array([self.label2id[r["label"]] for r in results], dtype=np.int64)

    def predict(self, texts: list[str]) -> Outputs:
        return self._run(texts, batch_size=len(texts))

    def predict_all(
        self, texts: list[str], batch_size: int, progress: Callable[[int], None] | None = None
    ) -> Outputs:
        # Chunks are multiples of the batch size, so the pipeline forms the same batches as one big call would.
        chunk = batch_size * 64
        parts = []
        for start in range(0, len(texts), chunk):
            parts.append(self._run(texts[start : start + chunk], batch_size))
            if progress is not None:
                progress(len(texts[start : start + chunk]))
        return concat_outputs(parts, self.spec.task)

    def model_bytes(self) -> int:
        return model_files_bytes(self.spec.source)

    def describe(self) -> dict[str, Any]:
        return {"stack": "transformers pipeline", "padding": "longest (per batch)", "torch_threads": self.spec.threads}
