"""Text classification (sentiment, emotion, sentence type): logits → softmax/sigmoid → top-k labels.

Texts longer than one window are truncated to the manifest's ``max_length`` (``long_text="truncate"``, what the
seeds' own pipelines do), or split into overlapping windows whose logits are averaged (``long_text="windows"``,
``pooling="mean"``) or max-pooled (``pooling="max"``), so the end of a long review counts too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from kolite.errors import InvalidInputError
from kolite.model import DEFAULT_BATCH_SIZE, KoliteModel, check_positive_int, pick_options
from kolite.results import Prediction
from kolite.tokenization import Encoded

__all__ = ["FUNCTIONS", "LONG_TEXT", "POOLING", "ClassifyOptions", "TextClassifier", "sigmoid", "softmax"]

FUNCTIONS = ("default", "softmax", "sigmoid", "none")  # transformers' function_to_apply (default: by problem type)
LONG_TEXT = ("truncate", "windows")
POOLING = ("mean", "max")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


@dataclass(frozen=True)
class ClassifyOptions:
    """How texts are classified. ``top_k=None`` returns every label; ``function_to_apply="none"`` raw logits."""

    top_k: int | None = 1
    function_to_apply: str = "default"
    long_text: str = "truncate"
    pooling: str = "mean"
    stride: int | None = None  # window overlap in tokens (long_text="windows"); None: a quarter of a window


_FIELDS = tuple(f.name for f in fields(ClassifyOptions))


def _choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    text = str(value).lower()
    if text not in allowed:
        raise InvalidInputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return text


class TextClassifier(KoliteModel):
    """One label set per text; an empty or whitespace-only text is classified as ``[CLS] [SEP]``."""

    task = "text-classification"
    result_key = "predictions"

    def options(self, **kwargs: Any) -> ClassifyOptions:
        values = pick_options(_FIELDS, kwargs, self.task)
        top_k = values.get("top_k", 1)
        stride = values.get("stride")
        return ClassifyOptions(
            top_k=None if top_k is None else min(check_positive_int("top_k", top_k), len(self.labels)),
            function_to_apply=_choice("function_to_apply", values.get("function_to_apply", "default"), FUNCTIONS),
            long_text=_choice("long_text", values.get("long_text", "truncate"), LONG_TEXT),
            pooling=_choice("pooling", values.get("pooling", "mean"), POOLING),
            stride=None if stride is None else self.check_stride(stride),
        )

    def _stride(self, options: ClassifyOptions) -> int | None:
        if options.long_text == "truncate":
            return None
        return self.default_stride() if options.stride is None else options.stride

    def decode(self, outputs: Sequence[np.ndarray], encoded: Encoded, options: ClassifyOptions) -> list[list[Any]]:
        scores = self.activate(self.pool(outputs, encoded, options.pooling), options.function_to_apply)
        k = len(self.labels) if options.top_k is None else options.top_k
        order = np.argsort(-scores, axis=-1, kind="stable")[:, :k]
        labels = self.labels
        return [
            [Prediction(labels[j], float(row[j])) for j in ranked]
            for row, ranked in zip(scores, order.tolist(), strict=True)
        ]

    def pool(self, outputs: Sequence[np.ndarray], encoded: Encoded, pooling: str = "mean") -> np.ndarray:
        """One logit row per text: the window's own, or the mean/max over a long text's windows."""
        if len(outputs) == len(encoded):
            return np.stack(outputs).astype(np.float32, copy=False)
        reduce = np.mean if pooling == "mean" else np.max
        return np.stack([reduce(np.stack(rows), axis=0) for rows in encoded.per_text(outputs)]).astype(np.float32)

    def activate(self, logits: np.ndarray, function_to_apply: str = "default") -> np.ndarray:
        """Scores from logits; ``default`` is sigmoid for multi-label models, softmax otherwise."""
        if function_to_apply == "default":
            multi = self.manifest.problem_type == "multi_label_classification" or len(self.labels) == 1
            function_to_apply = "sigmoid" if multi else "softmax"
        if function_to_apply == "softmax":
            return softmax(logits)
        if function_to_apply == "sigmoid":
            return sigmoid(logits)
        return logits

    # ---- named entry points ----

    def logits(
        self, texts: str | Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE, **options: Any
    ) -> np.ndarray:
        """Raw logits, float32 [n, num_labels], in input order (fast path for benchmarks and labelling)."""
        parsed = self.options(**options)
        encoded = self.encode(texts, parsed)
        return self.pool(self.run(encoded, batch_size), encoded, parsed.pooling)

    def scores(self, texts: str | Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE, **options: Any) -> np.ndarray:
        """Probabilities [n, num_labels]: softmax (single-label) or sigmoid (multi-label)."""
        parsed = self.options(**options)
        return self.activate(self.logits(texts, batch_size, **options), parsed.function_to_apply)

    def classify(
        self, texts: str | Sequence[str], top_k: int | None = 1, batch_size: int = DEFAULT_BATCH_SIZE, **options: Any
    ) -> list[Prediction] | list[list[Prediction]]:
        """Top ``top_k`` labels per text by score (``None`` = all labels), highest first.

        A single ``str`` gives ``list[Prediction]``; a list gives one such list per text, in input order.
        Options: ``function_to_apply`` (default, softmax, sigmoid, none), ``long_text`` (truncate, windows),
        ``pooling`` (mean, max) and ``stride`` for windows.
        """
        return self.predict(texts, batch_size=batch_size, top_k=top_k, **options)
