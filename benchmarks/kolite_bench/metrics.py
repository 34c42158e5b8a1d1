"""Scores computed in the parent process from each contender's predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kolite_bench.ner import Span, char_bio, entity_scores

__all__ = ["classification_scores", "ner_scores"]


def _macro_f1(gold: np.ndarray, pred: np.ndarray, num_labels: int) -> float:
    scores = []
    for label in range(num_labels):
        tp = int(((pred == label) & (gold == label)).sum())
        fp = int(((pred == label) & (gold != label)).sum())
        fn = int(((pred != label) & (gold == label)).sum())
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def classification_scores(
    predictions: Sequence[int], gold: Sequence[int] | None, reference: Sequence[int] | None, num_labels: int
) -> dict[str, Any]:
    """Accuracy / macro-F1 against gold labels (when labelled) and agreement with the original's predictions.

    All three are computed over the texts this contender predicted (its first ``n`` texts of the set).
    """
    pred = np.asarray(predictions, dtype=np.int64)
    n = len(pred)
    scores: dict[str, Any] = {"n_scored": n}
    if gold is not None:
        g = np.asarray(gold[:n], dtype=np.int64)
        scores["accuracy"] = float((pred == g).mean()) if n else None
        scores["macro_f1"] = _macro_f1(g, pred, num_labels) if n else None
    if reference is not None:
        m = min(n, len(reference))
        ref = np.asarray(reference[:m], dtype=np.int64)
        scores["agreement"] = float((pred[:m] == ref).mean()) if m else None
        scores["agreement_n"] = m
        if gold is not None and m:
            # Accuracy change against the original on the same texts (percentage points).
            g = np.asarray(gold[:m], dtype=np.int64)
            scores["delta_accuracy_pt"] = float(((pred[:m] == g).mean() - (ref == g).mean()) * 100)
    return scores


def _bio(texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> list[list[str]]:
    return [char_bio(len(text), [tuple(s) for s in row]) for text, row in zip(texts, spans, strict=False)]  # type: ignore[misc]


def ner_scores(
    texts: Sequence[str],
    predictions: Sequence[Sequence[Span]],
    gold: Sequence[list[str]] | None,
    reference: Sequence[Sequence[Span]] | None,
) -> dict[str, Any]:
    """Entity-F1 (seqeval, KLUE's six tags, character level) against gold and against the original's entities."""
    n = len(predictions)
    predicted = _bio(texts[:n], predictions)
    scores: dict[str, Any] = {"n_scored": n}
    if gold is not None:
        scores.update(entity_scores([list(g) for g in gold[:n]], predicted))
    if reference is not None:
        m = min(n, len(reference))
        ref = _bio(texts[:m], reference[:m])
        agreement = entity_scores(ref, predicted[:m])
        scores["agreement"] = agreement["entity_f1"]  # entity-F1 taking the original's entities as the truth
        scores["agreement_exact_sentences"] = float(
            np.mean([p == r for p, r in zip(predicted[:m], ref, strict=False)]) if m else 0.0
        )
        scores["agreement_n"] = m
        if gold is not None and m:
            # Entity-F1 change against the original on the same texts (percentage points).
            gold_m = [list(g) for g in gold[:m]]
            delta = entity_scores(gold_m, predicted[:m])["entity_f1"] - entity_scores(gold_m, ref)["entity_f1"]
            scores["delta_entity_f1_pt"] = float(delta * 100)
    return scores
