"""Token classification (NER): BIO tags per token → entities with character offsets into the original text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kolite.aggregation import RawEntity, aggregate, check_aggregation, gather_pre_tokens, merge_overlapping
from kolite.classification import softmax
from kolite.errors import InvalidInputError
from kolite.model import DEFAULT_BATCH_SIZE, KoliteModel, validate_texts
from kolite.results import Entity

__all__ = ["TokenClassifier"]


class TokenClassifier(KoliteModel):
    """Tags entities. Texts longer than one window (``max_length`` tokens) are split into windows overlapping
    by ``stride`` tokens and the entities merged, exactly like ``pipeline("ner", stride=...)``: nothing is cut."""

    def default_stride(self) -> int:
        return max(1, self.encoder.window_capacity // 4)

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
        items, single = validate_texts(texts, self.max_items)
        strategy = check_aggregation(aggregation)
        stride = self._check_stride(stride)
        windows = self.encoder.encode_windows(items, stride)
        flat = [window for text_windows in windows for window in text_windows]
        logits = self._run([window.ids for window in flat], batch_size)
        results, position = [], 0
        for text, text_windows in zip(items, windows, strict=True):
            count = len(text_windows)
            raw = self._entities(
                text, text_windows, logits[position : position + count], strategy, stride, set(ignore_labels)
            )
            position += count
            results.append(
                [Entity(e.label, float(e.score), e.start, e.end, text[e.start : e.end], e.index) for e in raw]
            )
        return results[0] if single else results

    def token_logits(self, texts: str | Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> list[np.ndarray]:
        """Raw logits [tokens, num_labels] per text (first window only, special tokens included)."""
        items, _ = validate_texts(texts, self.max_items)
        return self._run([e.ids for e in self.encoder.encode(items)], batch_size)

    def predict(
        self,
        texts: str | Sequence[str],
        aggregation: str = "simple",
        batch_size: int = DEFAULT_BATCH_SIZE,
        stride: int | None = None,
        **_: object,
    ) -> list[Entity] | list[list[Entity]]:
        """``tag()``; options meant for text classification (``top_k``) are ignored."""
        return self.tag(texts, aggregation=aggregation, batch_size=batch_size, stride=stride)

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
            pre_tokens = gather_pre_tokens(
                text,
                window.tokens,
                window.ids,
                window.offsets,
                window.special_tokens_mask,
                softmax(window_logits.astype(np.float32, copy=False)),
                self.encoder.subword_prefix,
                self.encoder.unk_token_id,
                # token index in the whole text's tokenization: each window advances by capacity - stride
                index_offset=number * step,
            )
            entities.extend(e for e in aggregate(pre_tokens, strategy, self.labels) if e.label not in ignore)
        return merge_overlapping(entities) if len(windows) > 1 else entities

    def _check_stride(self, stride: int | None) -> int:
        if stride is None:
            return self.default_stride()
        capacity = self.encoder.window_capacity
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or not 0 <= stride < capacity:
            raise InvalidInputError(f"stride must be an int in [0, {capacity}) for this model, got {stride!r}")
        return int(stride)
