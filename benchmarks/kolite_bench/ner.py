"""NER scoring: model entities (character spans) → character BIO over KLUE's tags → seqeval entity-F1.

KLUE-NER dev tags each character with BIO over PS LC OG DT TI QT; the seed 004 predicts the 15 TTA tags, of which
these six have the same names and meaning. Every contender's entities are projected onto the characters of the
sentence, tags outside KLUE's six become ``O``, and seqeval scores the character sequences, so tokenisation
differences between contenders cannot change the score.
"""

from __future__ import annotations

from collections.abc import Sequence

from kolite.aggregation import bio_spans

__all__ = ["KLUE_TAGS", "Span", "char_bio", "entity_scores", "spans_from_token_labels"]

KLUE_TAGS = ("PS", "LC", "OG", "DT", "TI", "QT")
Span = tuple[int, int, str]  # (char start, char end exclusive, entity type)


def spans_from_token_labels(labels: Sequence[str], offsets: Sequence[tuple[int, int]]) -> list[Span]:
    """Group token BIO labels into character spans with the runtime's grouping (``kolite.aggregation.bio_spans``,
    the "simple" aggregation: B starts, I of the same type continues).

    ``offsets`` are the tokenizer's character offsets; special and padding tokens have (0, 0) and are skipped.
    """
    kept = [(label, span) for label, span in zip(labels, offsets, strict=False) if span[0] != span[1]]
    spans = bio_spans([label for label, _ in kept])
    return [(int(kept[start][1][0]), int(kept[end - 1][1][1]), kind) for start, end, kind in spans]


def char_bio(text_length: int, spans: Sequence[Span], tags: Sequence[str] = KLUE_TAGS) -> list[str]:
    """Character BIO sequence of ``spans`` (types outside ``tags`` are dropped; overlaps keep the first)."""
    out = ["O"] * text_length
    for start, end, entity in sorted(spans):
        if entity not in tags:
            continue
        start, end = max(0, start), min(text_length, end)
        if start >= end or out[start] != "O":
            continue
        out[start] = f"B-{entity}"
        for i in range(start + 1, end):
            if out[i] != "O":
                break
            out[i] = f"I-{entity}"
    return out


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """seqeval micro precision/recall/F1 over entities (strict IOB2 spans)."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    return {
        "entity_f1": float(f1_score(gold, predicted)),
        "entity_precision": float(precision_score(gold, predicted)),
        "entity_recall": float(recall_score(gold, predicted)),
    }
