"""Token classification (NER): BIO tags per token → entities with character offsets into the original text."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from kolite.aggregation import (
    LabelScheme,
    RawEntity,
    check_aggregation,
    merge_overlapping,
    subword_flags,
    token_entities,
    word_entities,
)
from kolite.classification import softmax
from kolite.errors import InvalidInputError
from kolite.guard import DecodeView
from kolite.model import DEFAULT_BATCH_SIZE, KoliteModel, pick_options, validate_texts
from kolite.normalization import NormalizedText
from kolite.results import Entity
from kolite.tokenization import Encoded

__all__ = ["TagOptions", "TokenClassifier"]


@dataclass(frozen=True)
class TagOptions:
    """How tokens become entities. ``stride=None``: windows overlap by a quarter of a window."""

    aggregation: str = "simple"
    stride: int | None = None
    ignore_labels: tuple[str, ...] = ("O",)


_FIELDS = tuple(f.name for f in fields(TagOptions))


class TokenClassifier(KoliteModel):
    """Tags entities. Texts longer than one window (``max_length`` tokens) are split into windows overlapping
    by ``stride`` tokens and the entities merged, exactly like ``pipeline("ner", stride=...)``: nothing is cut."""

    task = "token-classification"
    result_key = "entities"

    def options(self, **kwargs: Any) -> TagOptions:
        values = pick_options(_FIELDS, kwargs, self.task)
        stride = values.get("stride")
        ignore = values.get("ignore_labels", ("O",))
        if isinstance(ignore, str) or not all(isinstance(label, str) for label in ignore):
            raise InvalidInputError(f"ignore_labels must be a list of label names, got {ignore!r}")
        return TagOptions(
            aggregation=check_aggregation(values.get("aggregation", "simple")),
            stride=self.default_stride() if stride is None else self.check_stride(stride),
            ignore_labels=tuple(ignore),
        )

    @functools.cached_property
    def label_scheme(self) -> LabelScheme:
        return LabelScheme.of(self.labels)

    def _stride(self, options: TagOptions) -> int:
        return self.default_stride() if options.stride is None else options.stride

    def decode(self, outputs: Sequence[np.ndarray], encoded: Encoded, options: TagOptions) -> list[list[Any]]:
        ignore = set(options.ignore_labels)
        stride = self._stride(options)
        results = []
        for text, normalized, windows, logits in zip(
            encoded.texts, encoded.normalized, encoded.windows, encoded.per_text(outputs), strict=True
        ):
            raw = self._entities(normalized.text, windows, logits, options.aggregation, stride, ignore)
            results.append([_to_original(entity, text, normalized) for entity in raw])
        return results

    def encode(self, texts: str | Sequence[str], options: Any = None) -> Encoded:
        """``KoliteModel.encode``, noting per text the aggregation its decode applies (what the guard checks)."""
        encoded = super().encode(texts, options)
        aggregation = (options if options is not None else self.options()).aggregation
        return dataclasses.replace(encoded, aggregations=(aggregation,) * len(encoded))

    def guard_views(self, encoded: Encoded) -> list[DecodeView | None]:
        """The fidelity guard's view of each window: what its text's decode reads (``DecodeView``: positions,
        the decode's own subword rule, aggregation, label scheme); None under ``none``, whose answer is every
        token's own label (the token-margin rule)."""
        views: list[DecodeView | None] = []
        aggregations = encoded.aggregations or (None,) * len(encoded)
        for normalized, windows, aggregation in zip(encoded.normalized, encoded.windows, aggregations, strict=True):
            if aggregation == "none":
                views.extend([None] * len(windows))
                continue
            for window in windows:
                kept = np.flatnonzero(np.asarray(window.special_tokens_mask) == 0)
                offsets = np.asarray(window.offsets, dtype=np.int64).reshape(-1, 2)[kept]
                tokens, ids = window.tokens, np.asarray(window.ids, dtype=np.int64)
                flags = subword_flags(normalized.text, [tokens[i] for i in kept], ids[kept], offsets,
                                      self.encoder.subword_prefix, self.encoder.unk_token_id)
                views.append(DecodeView(kept, flags, aggregation, self.label_scheme, len(windows) == 1))
        return views

    def tag(
        self,
        texts: str | Sequence[str],
        aggregation: str = "simple",
        batch_size: int = DEFAULT_BATCH_SIZE,
        stride: int | None = None,
        ignore_labels: Sequence[str] = ("O",),
    ) -> list[Entity] | list[list[Entity]]:
        """Entities per text, sorted by start offset.

        ``aggregation``: ``none`` (one entity per token, BIO label, ``index`` set), ``simple`` (BIO spans),
        ``first`` / ``average`` / ``max`` (like simple, but all tokens of a word get one label).
        A single ``str`` gives ``list[Entity]``; a list gives one list per text, in input order.
        """
        return self.predict(
            texts, batch_size=batch_size, aggregation=aggregation, stride=stride, ignore_labels=tuple(ignore_labels)
        )

    def token_logits(self, texts: str | Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> list[np.ndarray]:
        """Raw logits [tokens, num_labels] per text (first window only, special tokens included)."""
        items, _ = validate_texts(texts, self.max_items)
        return self.run(self.encoder.encode(items), batch_size)

    def _entities(
        self,
        text: str,
        windows: Sequence[Any],
        logits: Sequence[np.ndarray],
        strategy: str,
        stride: int,
        ignore: set[str],
    ) -> list[RawEntity]:
        step = self.encoder.window_capacity - stride
        entities: list[RawEntity] = []
        for number, (window, window_logits) in enumerate(zip(windows, logits, strict=True)):
            probabilities = softmax(window_logits.astype(np.float32, copy=False))
            index_offset = number * step  # token index in the whole text: each window advances by capacity - stride
            kept = np.flatnonzero(np.asarray(window.special_tokens_mask) == 0)
            offsets = np.asarray(window.offsets, dtype=np.int64).reshape(-1, 2)[kept]
            if strategy in ("none", "simple"):  # no words needed
                found = token_entities(
                    probabilities[kept], offsets, kept + index_offset, strategy, self.labels, self.label_scheme, ignore
                )
            else:
                tokens, ids = window.tokens, np.asarray(window.ids, dtype=np.int64)
                is_subword = subword_flags(
                    text, [tokens[i] for i in kept], ids[kept], offsets, self.encoder.subword_prefix,
                    self.encoder.unk_token_id,
                )
                found = word_entities(probabilities[kept], offsets, is_subword, strategy, self.labels,
                                      self.label_scheme, ignore)
            entities.extend(found)
        return merge_overlapping(entities) if len(windows) > 1 else entities


def _to_original(entity: RawEntity, text: str, normalized: NormalizedText) -> Entity:
    """An entity found in the normalised text, with offsets and surface taken from the string the user sent."""
    start, end = normalized.to_original(entity.start, entity.end)
    return Entity(entity.label, float(entity.score), start, end, text[start:end], entity.index)
