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
    "WORD_POOLING",
    "LabelScheme",
    "PreToken",
    "RawEntity",
    "aggregate",
    "bio_spans",
    "check_aggregation",
    "gather_pre_tokens",
    "groups_fixed",
    "merge_overlapping",
    "subword_flags",
    "token_entities",
    "word_entities",
]

AGGREGATIONS = ("none", "simple", "first", "average", "max")
# The aggregations that pool softmax scores over a word's tokens: a per-token logit margin does not bound their
# answer, so the fidelity guard checks those words too (kolite.guard.pooled_word_uncertain).
WORD_POOLING = ("average", "max")


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


def subword_flags(
    text: str,
    tokens: Sequence[str],
    ids: Sequence[int] | np.ndarray,
    offsets: Sequence[tuple[int, int]] | np.ndarray,
    subword_prefix: str | None,
    unk_token_id: int | None,
) -> np.ndarray:
    """The pipeline's subword rule, one flag per token given: with a WordPiece prefix a token longer than its surface
    (``##x`` against ``x``) continues a word; otherwise a token continues one when no space touches its start. An
    unknown token always starts a word."""
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    if subword_prefix:
        token_lengths = np.fromiter((len(token) for token in tokens), dtype=np.int64, count=len(tokens))
        clipped = np.minimum(offsets, len(text))  # len(text[start:end]), as Python slices it
        flags = token_lengths != np.maximum(clipped[:, 1] - clipped[:, 0], 0)
    else:
        starts = offsets[:, 0].tolist()
        flags = np.array([start > 0 and " " not in text[start - 1 : start + 1] for start in starts], dtype=bool)
    if unk_token_id is not None:
        flags &= np.asarray(ids, dtype=np.int64).reshape(-1) != unk_token_id
    return flags


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
    kept = [idx for idx in range(len(scores)) if not special_mask[idx]]
    flags = subword_flags(
        text, [tokens[i] for i in kept], [ids[i] for i in kept], [offsets[i] for i in kept], subword_prefix,
        unk_token_id,
    )
    return [
        PreToken(scores[idx], offsets[idx][0], offsets[idx][1], idx + index_offset, bool(flag))
        for idx, flag in zip(kept, flags, strict=True)
    ]


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


@dataclass(frozen=True)
class LabelScheme:
    """The BIO reading of a label set, per label id: does it open a span (``B-``), which type it continues, and
    the name of a group it starts (the pipeline's ``label.split("-", 1)[-1]``)."""

    opens: np.ndarray  # bool per label id
    types: np.ndarray  # int per label id: equal ids continue each other
    group_names: tuple[str, ...]

    @classmethod
    def of(cls, labels: Sequence[str]) -> LabelScheme:
        split = [_split_tag(label) for label in labels]
        type_ids = {tag: number for number, tag in enumerate(dict.fromkeys(tag for _, tag in split))}
        return cls(
            np.array([bio == "B" for bio, _ in split], dtype=bool),
            np.array([type_ids[tag] for _, tag in split], dtype=np.int64),
            tuple(label.split("-", 1)[-1] for label in labels),
        )


def _label_ids(labels: Sequence[str]) -> tuple[np.ndarray, LabelScheme]:
    """Label strings → ids into their own distinct labels, and the scheme of those."""
    names = {label: number for number, label in enumerate(dict.fromkeys(labels))}
    return np.array([names[label] for label in labels], dtype=np.int64), LabelScheme.of(list(names))


def _group_bounds(label_ids: np.ndarray, scheme: LabelScheme) -> tuple[np.ndarray, np.ndarray]:
    """Runs of adjacent labels of the same type, a run broken where a label opens with B-: (starts, ends)."""
    if len(label_ids) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    types = scheme.types[label_ids]
    opens_group = np.empty(len(label_ids), dtype=bool)
    opens_group[0] = True
    opens_group[1:] = (types[1:] != types[:-1]) | scheme.opens[label_ids[1:]]
    starts = np.flatnonzero(opens_group)
    return starts, np.append(starts[1:], len(label_ids))


def groups_fixed(possible: np.ndarray, scheme: LabelScheme) -> bool:
    """Whether every choice of one label per unit (token or word) among ``possible[unit]`` (bool [units, labels])
    gives the same groups as ``_group_bounds`` makes them: the same type per unit and the same group starts.

    A unit may waver between labels of one type only where that cannot move a boundary: between ``B-X`` and
    ``I-X`` when the unit before it is of another type (a new group starts either way), or it is the first."""
    possible = np.asarray(possible, dtype=bool)
    if len(possible) == 0:
        return True
    # A label's type and the name its group is reported under (equal for B-X/I-X; kept apart for odd label sets).
    names = {name: number for number, name in enumerate(dict.fromkeys(scheme.group_names))}
    kinds = scheme.types * len(names) + np.array([names[name] for name in scheme.group_names], dtype=np.int64)
    distinct = np.unique(kinds)
    member = (kinds[:, None] == distinct[None, :]).astype(np.int32)  # [labels, kinds]
    unit_kinds = (possible.astype(np.int32) @ member) > 0
    if (unit_kinds.sum(axis=1) > 1).any():
        return False
    types = distinct[unit_kinds.argmax(axis=1)] // len(names)
    wavers = possible[:, scheme.opens].any(axis=1) & possible[:, ~scheme.opens].any(axis=1)
    continues_type = np.zeros(len(types), dtype=bool)
    continues_type[1:] = types[1:] == types[:-1]
    return not bool((wavers & continues_type).any())


def bio_spans(labels: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entity spans ``(start, end exclusive, type)`` over positions of ``labels``, grouped exactly as ``aggregate``
    groups entities: a B- opens a span, an I- of the same type continues it, an I- of another type opens one, a
    label without a B-/I- prefix continues a run of its own type, and runs of ``O`` are not entities."""
    ids, scheme = _label_ids(labels)
    starts, ends = _group_bounds(ids, scheme)
    spans = [(int(start), int(end), _split_tag(labels[start])[1]) for start, end in zip(starts, ends, strict=True)]
    return [span for span in spans if span[2] != "O"]


def _group_score(scores: np.ndarray) -> np.floating:
    """The pipeline's group score ``np.mean(np.nanmean(scores))``, bit for bit, without nanmean's per-call cost:
    the same float32 reduction of the same contiguous array, divided by the count in float64, as nanmean does.
    ``scores`` must hold no NaN (the caller checks a window once)."""
    return scores.dtype.type(float(np.add.reduce(scores)) / len(scores))


def _group_entities(entities: Sequence[RawEntity]) -> list[RawEntity]:
    """Merge adjacent entities of the same type unless the next one opens with B-."""
    ids, scheme = _label_ids([entity.label for entity in entities])
    starts, ends = _group_bounds(ids, scheme)
    return [_group(entities[start:end]) for start, end in zip(starts, ends, strict=True)]


def _group(group: Sequence[RawEntity]) -> RawEntity:
    label = group[0].label.split("-", 1)[-1]
    score = np.mean(np.nanmean([entity.score for entity in group]))
    return RawEntity(label, score, group[0].start, group[-1].end)


def token_entities(
    probabilities: np.ndarray,
    offsets: np.ndarray,
    positions: np.ndarray,
    strategy: str,
    labels: Sequence[str],
    scheme: LabelScheme,
    ignore: set[str] | frozenset[str] = frozenset(),
) -> list[RawEntity]:
    """``aggregate`` for ``none`` and ``simple`` on arrays, one numpy pass per window instead of objects per token:
    the same entities and the same scores bit for bit (a test holds it to ``aggregate``), minus those in
    ``ignore``. ``probabilities`` [tokens, labels], ``offsets`` [tokens, 2] and ``positions`` (the token index
    reported by ``none``) cover the non-special tokens only."""
    if strategy not in ("none", "simple"):
        raise InvalidInputError(f"aggregation {strategy!r} needs words: use aggregate()")
    best = probabilities.argmax(axis=-1)
    scores = probabilities[np.arange(len(best)), best]
    if strategy == "none":
        return [
            RawEntity(labels[label], scores[i], int(offsets[i, 0]), int(offsets[i, 1]), int(positions[i]))
            for i, label in enumerate(best.tolist())
            if labels[label] not in ignore
        ]
    return _bio_entities(best, scores, offsets[:, 0], offsets[:, 1], scheme, ignore)


def _bio_entities(
    best: np.ndarray,
    scores: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    scheme: LabelScheme,
    ignore: set[str] | frozenset[str],
) -> list[RawEntity]:
    """Units (tokens or words) with their best label id, its score and their character span → BIO-grouped entities
    not in ``ignore``, each scored the pipeline's way (the mean of its units' scores)."""
    has_nan = bool(np.isnan(scores).any())
    entities = []
    for first, end in zip(*_group_bounds(best, scheme), strict=True):
        name = scheme.group_names[best[first]]
        if name in ignore:
            continue
        group_scores = scores[first:end]
        score = np.mean(np.nanmean(group_scores)) if has_nan else _group_score(group_scores)
        entities.append(RawEntity(name, score, int(starts[first]), int(ends[end - 1])))
    return entities


def word_entities(
    probabilities: np.ndarray,
    offsets: np.ndarray,
    is_subword: np.ndarray,
    strategy: str,
    labels: Sequence[str],
    scheme: LabelScheme,
    ignore: set[str] | frozenset[str] = frozenset(),
) -> list[RawEntity]:
    """``aggregate`` for ``first``, ``average`` and ``max`` on arrays: one label per word (a token and the subwords
    after it), then BIO groups, the same entities and scores bit for bit (a test holds it to ``aggregate``), minus
    those in ``ignore``. Inputs cover the non-special tokens only; a window holding a NaN takes ``aggregate``."""
    count = len(probabilities)
    if count == 0:
        return []
    if np.isnan(probabilities).any():  # NaN ordering in max/argmax: leave it to the reference path
        pre_tokens = [PreToken(row, int(s), int(e), 0, bool(sub)) for row, (s, e), sub in
                      zip(probabilities, offsets.tolist(), is_subword, strict=True)]
        return [e for e in aggregate(pre_tokens, strategy, labels) if e.label not in ignore]
    opens_word = ~np.asarray(is_subword, dtype=bool)
    opens_word[0] = True
    firsts = np.flatnonzero(opens_word)
    lasts = np.append(firsts[1:], count) - 1
    if strategy == "first":
        word_scores = probabilities[firsts]
    elif strategy == "max":  # the word's first token whose best score is the word's highest
        token_best = probabilities.max(axis=-1)
        word_of = np.cumsum(opens_word) - 1
        holders = np.where(token_best == np.maximum.reduceat(token_best, firsts)[word_of], np.arange(count), count)
        word_scores = probabilities[np.minimum.reduceat(holders, firsts)]
    elif strategy == "average":
        word_scores = probabilities[firsts]  # a one-token word's average is its own scores
        for word in np.flatnonzero(lasts > firsts):
            # nanmean's arithmetic: numpy's own float32 sum over the word's rows (np.add.reduceat adds them in
            # another order), divided in float64
            rows = probabilities[firsts[word] : lasts[word] + 1]
            word_scores[word] = np.add.reduce(rows, axis=0).astype(np.float64) / len(rows)
    else:
        raise InvalidInputError(f"aggregation {strategy!r} does not aggregate words")
    best = word_scores.argmax(axis=-1)
    scores = word_scores[np.arange(len(best)), best]
    return _bio_entities(best, scores, offsets[firsts, 0], offsets[lasts, 1], scheme, ignore)


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
