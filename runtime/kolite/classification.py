"""Text classification (sentiment, emotion, sentence type): logits → softmax/sigmoid → top-k labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kolite.errors import InvalidInputError
from kolite.model import DEFAULT_BATCH_SIZE, KoliteModel, validate_texts
from kolite.results import Prediction

__all__ = ["TextClassifier", "sigmoid", "softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


class TextClassifier(KoliteModel):
    """One label set per text. Texts longer than the manifest's ``max_length`` tokens are truncated
    (on ``truncation_side``); an empty or whitespace-only text is classified as ``[CLS] [SEP]``."""

    def logits(self, texts: str | Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Raw logits, float32 [n, num_labels], in input order (fast path for benchmarks and labelling)."""
        items, _ = validate_texts(texts, self.max_items)
        return self._logits(items, batch_size)

    def scores(self, texts: str | Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Probabilities [n, num_labels]: softmax (single-label) or sigmoid (multi-label)."""
        items, _ = validate_texts(texts, self.max_items)
        return self._scores(items, batch_size)

    def _logits(self, items: list[str], batch_size: int) -> np.ndarray:
        rows = self._run([e.ids for e in self.encoder.encode(items)], batch_size)
        return np.stack(rows).astype(np.float32, copy=False)

    def _scores(self, items: list[str], batch_size: int) -> np.ndarray:
        logits = self._logits(items, batch_size)
        multi = self.manifest.problem_type == "multi_label_classification"
        return sigmoid(logits) if multi else softmax(logits)

    def classify(
        self, texts: str | Sequence[str], top_k: int | None = 1, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> list[Prediction] | list[list[Prediction]]:
        """Top ``top_k`` labels per text by score (``None`` = all labels), highest first.

        A single ``str`` gives ``list[Prediction]``; a list gives one such list per text, in input order.
        """
        items, single = validate_texts(texts, self.max_items)
        k = self._check_top_k(top_k)
        probabilities = self._scores(items, batch_size)
        order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :k]
        results = [
            [Prediction(self.labels[j], float(row[j])) for j in ranked]
            for row, ranked in zip(probabilities, order, strict=True)
        ]
        return results[0] if single else results

    def predict(
        self, texts: str | Sequence[str], top_k: int | None = 1, batch_size: int = DEFAULT_BATCH_SIZE, **_: object
    ) -> list[Prediction] | list[list[Prediction]]:
        """``classify()``; options meant for token classification (``aggregation``, ``stride``) are ignored."""
        return self.classify(texts, top_k=top_k, batch_size=batch_size)

    def _check_top_k(self, top_k: int | None) -> int:
        if top_k is None:
            return len(self.labels)
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise InvalidInputError(f"top_k must be a positive int or None (all labels), got {top_k!r}")
        return min(int(top_k), len(self.labels))
