"""Token → entity aggregation, a numpy port of transformers' ``TokenClassificationPipeline`` post-processing.

Same strategies (none, simple, first, average, max), same subword rule, same BIO grouping and the same merge of
overlapping windows, so results equal the pipeline's for the same strategy (and ``stride`` for long texts).
The one deliberate difference: an entity's ``text`` is the original substring ``text[start:end]``, not the
pipeline's decoded ``word`` (which re-joins WordPiece tokens with spaces).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kolite.errors import InvalidInputError

__all__ = [
    "AGGREGATIONS",
    "PreToken",
    "RawEntity",
    "aggregate",
    "bio_spans",
    "check_aggregation",
    "gather_pre_tokens",
    "merge_overlapping",
]

AGGREGATIONS = ("none", "simple", "first", "average", "max")


@dataclass(frozen=True)
class PreToken:
    scores: np.ndarray  # probabilities over labels, float32
    start: int
    end: int
    index: int
    is_subword: bool


@dataclass(frozen=True)
class RawEntity:
    label: str
    score: float
    start: int
    end: int
    index: int | None = None


def check_aggregation(aggregation: str) -> str:
    name = str(aggregation).lower()
    if name not in AGGREGATIONS:
        raise InvalidInputError(f"unknown aggregation {aggregation!r}; valid: {', '.join(AGGREGATIONS)}")
    return name


def gather_pre_tokens(
    text: str,
    tokens: Sequence[str],
    ids: Sequence[int],
    offsets: Sequence[tuple[int, int]],
    special_mask: Sequence[int],
    scores: np.ndarray,
    subword_prefix: str | None,
    unk_token_id: int | None,
    index_offset: int = 0,
) -> list[PreToken]:
    """One PreToken per non-special token, with the pipeline's subword rule."""
    pre_tokens = []
    for idx, token_scores in enumerate(scores):
        if special_mask[idx]:
            continue
        start, end = offsets[idx]
        surface = text[start:end]
        if subword_prefix:
            # A WordPiece "##x" token is longer than its surface "x": that is how the pipeline spots subwords.
            is_subword = len(tokens[idx]) != len(surface)
        else:
            is_subword = start > 0 and " " not in text[start - 1 : start + 1]
        if unk_token_id is not None and int(ids[idx]) == unk_token_id:
            is_subword = False
        pre_tokens.append(PreToken(token_scores, start, end, idx + index_offset, is_subword))
    return pre_tokens


def aggregate(pre_tokens: Sequence[PreToken], strategy: str, labels: Sequence[str]) -> list[RawEntity]:
    """Per-token entities (``none``) or BIO-grouped spans (other strategies)."""
    if strategy in ("none", "simple"):
        entities = []
        for token in pre_tokens:
            best = int(token.scores.argmax())
            entities.append(RawEntity(labels[best], token.scores[best], token.start, token.end, token.index))
    else:
        entities = _aggregate_words(pre_tokens, strategy, labels)
    return entities if strategy == "none" else _group_entities(entities)


def _aggregate_words(pre_tokens: Sequence[PreToken], strategy: str, labels: Sequence[str]) -> list[RawEntity]:
    """Force one label per word (a word = a token plus its following subwords)."""
    words: list[list[PreToken]] = []
    for token in pre_tokens:
        if words and token.is_subword:
            words[-1].append(token)
        else:
            words.append([token])
    return [_aggregate_word(word, strategy, labels) for word in words]


def _aggregate_word(word: Sequence[PreToken], strategy: str, labels: Sequence[str]) -> RawEntity:
    if strategy == "first":
        scores = word[0].scores
    elif strategy == "max":
        scores = max(word, key=lambda token: token.scores.max()).scores
    elif strategy == "average":
        scores = np.nanmean(np.stack([token.scores for token in word]), axis=0)
    else:
        raise InvalidInputError(f"aggregation {strategy!r} does not aggregate words")
    best = int(scores.argmax())
    return RawEntity(labels[best], scores[best], word[0].start, word[-1].end)


def _split_tag(label: str) -> tuple[str, str]:
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label  # not BIO: treat as a continuation, like the pipeline


def _bio_groups(labels: Sequence[str]) -> list[tuple[int, int, str]]:
    """Runs of adjacent labels of the same type, a run broken where a label opens with B-: (start, end, type)."""
    groups: list[list] = []
    for i, label in enumerate(labels):
        bio, tag = _split_tag(label)
        if groups and groups[-1][2] == tag and bio != "B":
            groups[-1][1] = i + 1
        else:
            groups.append([i, i + 1, tag])
    return [(start, end, tag) for start, end, tag in groups]


def bio_spans(labels: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entity spans ``(start, end exclusive, type)`` over positions of ``labels``, grouped exactly as ``aggregate``
    groups entities: a B- opens a span, an I- of the same type continues it, an I- of another type opens one, a
    label without a B-/I- prefix continues a run of its own type, and runs of ``O`` are not entities."""
    return [span for span in _bio_groups(labels) if span[2] != "O"]


def _group_entities(entities: Sequence[RawEntity]) -> list[RawEntity]:
    """Merge adjacent entities of the same type unless the next one opens with B-."""
    return [_group(entities[start:end]) for start, end, _ in _bio_groups([entity.label for entity in entities])]


def _group(group: Sequence[RawEntity]) -> RawEntity:
    label = group[0].label.split("-", 1)[-1]
    score = np.mean(np.nanmean([entity.score for entity in group]))
    return RawEntity(label, score, group[0].start, group[-1].end)


def merge_overlapping(entities: Sequence[RawEntity]) -> list[RawEntity]:
    """Entities from overlapping windows: of two that overlap keep the longer, then the higher score."""
    if not entities:
        return []
    ordered = sorted(entities, key=lambda entity: entity.start)
    merged = []
    previous = ordered[0]
    for entity in ordered:
        if previous.start <= entity.start < previous.end:
            length, previous_length = entity.end - entity.start, previous.end - previous.start
            if length > previous_length or (length == previous_length and entity.score > previous.score):
                previous = entity
        else:
            merged.append(previous)
            previous = entity
    merged.append(previous)
    return merged
