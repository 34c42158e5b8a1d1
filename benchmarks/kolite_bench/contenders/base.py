"""The contender interface: one way of running a model that the benchmark times and scores.

Contenders live in worker subprocesses (one per contender, so import cost and peak RSS are attributable); each
module imports its heavy stack (torch, transformers, optimum, kolite) inside ``load``.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Contender", "ContenderSpec", "Outputs", "concat_outputs", "source_key"]

# text-classification: np.ndarray[int64] of predicted label ids; token-classification: list of (start, end, type).
Outputs = Any


@dataclass(frozen=True)
class ContenderSpec:
    """Everything a worker needs to build a contender (JSON-able)."""

    name: str
    task: str
    source: str  # the PyTorch original: local folder or hub id
    artifact: str  # the kolite artifact folder
    layout: str = "hf"
    threads: int = 2
    max_length: int = 128
    batch_size: int = 32
    cache_dir: str = ".cache/bench"
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Contender(ABC):
    """Load once, then predict batches of texts in the order given."""

    def __init__(self, spec: ContenderSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @abstractmethod
    def load(self) -> None:
        """Import the stack and build the model (timed as part of cold start)."""

    @abstractmethod
    def predict(self, texts: list[str]) -> Outputs:
        """Predict one batch, exactly as a user of this stack would."""

    @abstractmethod
    def model_bytes(self) -> int:
        """Size on disk of the model files this contender loads."""

    def describe(self) -> dict[str, Any]:
        """How this contender runs (recipe, padding, provider, batching) — recorded in the results."""
        return {}

    def counters(self) -> dict[str, int]:
        """Monotonic counters the contender keeps (kolite's guard: rows checked and re-run); most keep none."""
        return {}

    def prepare(self) -> None:  # noqa: B027 - optional hook, most contenders need no one-off work
        """One-off work that is not part of serving (e.g. optimum's export + quantization); cached on disk."""

    def outputs_from_label_ids(self, ids: np.ndarray, offsets: Any) -> Outputs:
        """Argmax label ids → the task's outputs: class ids, or per-text entity spans from token labels + offsets."""
        if self.spec.task == "text-classification":
            return ids.astype(np.int64)
        from kolite_bench.ner import spans_from_token_labels

        id2label = self.id2label  # type: ignore[attr-defined] - token-classification contenders set it in load()
        return [
            spans_from_token_labels([id2label[int(i)] for i in row], [tuple(o) for o in offs.tolist()])
            for row, offs in zip(ids, offsets, strict=False)
        ]

    def predict_batches(self, batches: list[list[str]], progress: Callable[[int], None] | None = None) -> Outputs:
        """Outputs of every batch, in order; a contender with its own concurrency (OpenVINO's streams) overlaps them."""
        parts = []
        for batch in batches:
            parts.append(self.predict(batch))
            if progress is not None:
                progress(len(batch))
        return concat_outputs(parts, self.spec.task)

    def run_pass(self, batches: list[list[str]], sorted_by_length: bool) -> Outputs:
        """One timed throughput pass over the harness's batches (the same for every contender). kolite overrides it
        to hand a sorted pass to its public API, whose own planner forms these same batches."""
        return self.predict_batches(batches)

    def warm_pass(self, batches: list[list[str]], sorted_by_length: bool) -> None:
        """Untimed work before a timed pass, so the pass measures the steady state: by default the same pass once
        (every batch shape seen once). A runtime with per-stream shape caches overrides it (OpenVINO)."""
        self.run_pass(batches, sorted_by_length)

    def predict_all(
        self, texts: list[str], batch_size: int, progress: Callable[[int], None] | None = None
    ) -> Outputs:
        """Whole-set pass: batches of ``batch_size`` in file order, each padded to its own longest text."""
        batches = [texts[start : start + batch_size] for start in range(0, len(texts), batch_size)]
        return self.predict_batches(batches, progress)


def source_key(source: str) -> str:
    """A short key of a checkpoint (its path or hub id, plus its files' names, sizes and times): one-off exports
    cached under it are rebuilt when the checkpoint changes."""
    path = Path(source)
    parts = [source]
    if path.is_dir():
        parts += [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in sorted(path.iterdir()) if f.is_file()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def concat_outputs(parts: list[Outputs], task: str) -> Outputs:
    if task == "text-classification":
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return [spans for part in parts for spans in part]
