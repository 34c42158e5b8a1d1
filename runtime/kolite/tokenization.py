"""The one tokenizer of the runtime: texts → ``Encoded`` (the first seam of encode → run → decode).

Every front end (Python API, CLI, labeller, server) encodes through ``TextEncoder.encode``: lone surrogates are
replaced, the text is normalised (NFC by default, see ``kolite.normalization``) and tokenized with the artifact's
own ``tokenizer.json``, either truncated to the manifest's ``max_length`` (one window per text) or split into
overlapping windows (``stride``), the way transformers' pipelines split long texts. Padding is never done here:
batches are padded to their own longest sequence when they run (``kolite.batching``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from kolite.normalization import NormalizedText, normalize

__all__ = ["Encoded", "TextEncoder", "replace_lone_surrogates"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s")
# Tokenising a 1 MB text only to keep its first 512 tokens costs seconds. Texts longer than this many characters
# per token of max_length are first cut at a whitespace (see TextEncoder._truncated).
_CHARS_PER_TOKEN = 16


def replace_lone_surrogates(text: str) -> str:
    """Lone surrogates (e.g. from ``errors="surrogateescape"``) cannot be encoded to UTF-8 and crash the Rust
    tokenizer. Each becomes U+FFFD: one code point for one, so character offsets into the original stay valid."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


@dataclass(frozen=True)
class Encoded:
    """Texts as token sequences: one or more windows (``tokenizers.Encoding``) per text, in text order.

    ``normalized[i]`` is what the tokenizer saw for ``texts[i]`` and maps its offsets back to the original;
    ``truncated[i]`` says tokens of text ``i`` were dropped (truncation, never with windows).
    """

    texts: tuple[str, ...]
    normalized: tuple[NormalizedText, ...]
    windows: tuple[tuple[Any, ...], ...]
    truncated: tuple[bool, ...]

    def __len__(self) -> int:
        return len(self.texts)

    @cached_property
    def sequences(self) -> list[list[int]]:
        """Token ids of every window, flattened in text order (what ``run`` feeds the model)."""
        return [window.ids for text_windows in self.windows for window in text_windows]

    @cached_property
    def lengths(self) -> np.ndarray:
        """Tokens of every sequence (special tokens included), flattened like ``sequences``."""
        return np.fromiter((len(s) for s in self.sequences), dtype=np.int64, count=len(self.sequences))

    @property
    def window_counts(self) -> list[int]:
        return [len(text_windows) for text_windows in self.windows]

    def per_text(self, outputs: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        """Outputs of ``run`` (one per sequence) grouped by text."""
        grouped, position = [], 0
        for count in self.window_counts:
            grouped.append(list(outputs[position : position + count]))
            position += count
        return grouped

    @staticmethod
    def join(parts: Sequence[Encoded]) -> Encoded:
        """Several encodings as one (the server runs the requests of a batch together)."""
        if len(parts) == 1:
            return parts[0]
        return Encoded(
            tuple(t for p in parts for t in p.texts),
            tuple(n for p in parts for n in p.normalized),
            tuple(w for p in parts for w in p.windows),
            tuple(t for p in parts for t in p.truncated),
        )


class TextEncoder:
    """Wraps ``tokenizers.Tokenizer`` built from the verified content of the artifact's tokenizer.json."""

    def __init__(
        self, tokenizer_json: str, max_length: int, truncation_side: str = "right", normalization: str = "NFC"
    ) -> None:
        self._json = tokenizer_json
        self.max_length = max_length
        self.truncation_side = truncation_side
        self.normalization = normalization
        self.tokenizer = self._new_tokenizer(stride=0, direction=truncation_side)
        self.num_special_tokens = self.tokenizer.num_special_tokens_to_add(False)
        self._windowed: dict[int, Any] = {}
        self._lock = threading.Lock()
        model = self.tokenizer.model
        # WordPiece/BPE with a continuing-subword prefix ("##") let us tell subwords apart exactly
        # (same rule as transformers' TokenClassificationPipeline).
        self.subword_prefix: str | None = getattr(model, "continuing_subword_prefix", None) or None
        unk = getattr(model, "unk_token", None)
        self.unk_token_id: int | None = self.tokenizer.token_to_id(unk) if unk else None

    @property
    def window_capacity(self) -> int:
        """Text tokens that fit in one window (max_length minus [CLS]/[SEP])."""
        return self.max_length - self.num_special_tokens

    def encode(self, texts: Sequence[str], stride: int | None = None) -> Encoded:
        """One truncated window per text (``stride=None``), or every text split into windows of ``max_length``
        tokens overlapping by ``stride`` tokens (nothing is cut)."""
        texts = tuple(texts)
        clean = [replace_lone_surrogates(t) for t in texts]
        if stride is None:
            normalized, windows, truncated = self._truncated(clean)
        else:
            normalized = [normalize(t, self.normalization) for t in clean]
            encodings = self._window_tokenizer(stride).encode_batch([n.text for n in normalized])
            windows = [(encoding, *encoding.overflowing) for encoding in encodings]
            truncated = [False] * len(texts)
        return Encoded(texts, tuple(normalized), tuple(windows), tuple(truncated))

    def _truncated(self, texts: list[str]) -> tuple[list[NormalizedText], list[tuple[Any, ...]], list[bool]]:
        cuts = [self._cut(t) for t in texts]
        normalized = [normalize(t, self.normalization) for t in cuts]
        inputs = [n.text for n in normalized]
        # One text (the latency path): encode() skips encode_batch's hand-off to the Rust thread pool.
        encodings = [self.tokenizer.encode(inputs[0])] if len(inputs) == 1 else self.tokenizer.encode_batch(inputs)
        truncated = []
        for index, (text, cut, encoding) in enumerate(zip(texts, cuts, encodings, strict=True)):
            full = len(encoding.ids) >= self.max_length
            # A cut text that still fills the window tokenises to the same first tokens as the whole text (the cut
            # is at whitespace, where pre-tokenizers split); otherwise fall back to the whole text, to be exact.
            if cut is not text and not full:
                normalized[index] = normalize(text, self.normalization)
                encodings[index] = self.tokenizer.encode(normalized[index].text)
            truncated.append(bool(encodings[index].overflowing) or (cut is not text and full))
        return normalized, [(encoding,) for encoding in encodings], truncated

    def _cut(self, text: str) -> str:
        limit = self.max_length * _CHARS_PER_TOKEN
        if self.truncation_side != "right" or len(text) <= limit:
            return text
        match = _WHITESPACE.search(text, limit)
        return text[: match.start()] if match else text

    def _window_tokenizer(self, stride: int) -> Any:
        # One tokenizer per stride: enable_truncation mutates the tokenizer, and calls may run concurrently.
        with self._lock:
            tokenizer = self._windowed.get(stride)
            if tokenizer is None:
                tokenizer = self._windowed[stride] = self._new_tokenizer(stride, "right")
            return tokenizer

    def _new_tokenizer(self, stride: int, direction: str) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(self._json)
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_length, stride=stride, strategy="longest_first", direction=direction)
        return tokenizer
