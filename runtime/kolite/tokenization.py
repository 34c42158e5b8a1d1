"""Tokenizer set-up from the artifact's tokenizer.json: truncation from the manifest, never padding here."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["TextEncoder", "replace_lone_surrogates"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s")
# Tokenising a 1 MB text only to keep its first 512 tokens costs seconds. Texts longer than this many characters
# per token of max_length are first cut at a whitespace; see TextEncoder._encode_truncated.
_CHARS_PER_TOKEN = 16


def replace_lone_surrogates(text: str) -> str:
    """Lone surrogates (e.g. from ``errors="surrogateescape"``) cannot be encoded to UTF-8 and crash the Rust
    tokenizer. Each becomes U+FFFD: one code point for one, so character offsets into the original stay valid."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


class TextEncoder:
    """Wraps ``tokenizers.Tokenizer``: batch encoding truncated to ``max_length`` and stride windows for tagging.

    Padding is never done by the tokenizer: batches are padded to their own longest item (see ``batching``).
    """

    def __init__(self, path: str | Path, max_length: int, truncation_side: str = "right") -> None:
        from tokenizers import Tokenizer

        self._json = Path(path).read_text(encoding="utf-8")
        self.tokenizer = Tokenizer.from_str(self._json)
        self.max_length = max_length
        self.truncation_side = truncation_side
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length, strategy="longest_first", direction=truncation_side)
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

    def encode(self, texts: Sequence[str]) -> list[Any]:
        """``tokenizers.Encoding`` per text, truncated to max_length (with special tokens)."""
        clean = [replace_lone_surrogates(t) for t in texts]
        cuts = [self._cut(t) for t in clean]
        # One text (the latency path): encode() skips encode_batch's hand-off to the Rust thread pool.
        encodings = [self.tokenizer.encode(cuts[0])] if len(cuts) == 1 else self.tokenizer.encode_batch(cuts)
        for index, (text, cut, encoding) in enumerate(zip(clean, cuts, encodings, strict=True)):
            # A cut text that still fills the window tokenises to the same first tokens as the whole text (the cut
            # is at whitespace, where pre-tokenizers split); otherwise fall back to the whole text, to be exact.
            if cut is not text and len(encoding.ids) < self.max_length:
                encodings[index] = self.tokenizer.encode(text)
        return encodings

    def _cut(self, text: str) -> str:
        limit = self.max_length * _CHARS_PER_TOKEN
        if self.truncation_side != "right" or len(text) <= limit:
            return text
        match = _WHITESPACE.search(text, limit)
        return text[: match.start()] if match else text

    def encode_windows(self, texts: Sequence[str], stride: int) -> list[list[Any]]:
        """Every text split into windows of max_length tokens overlapping by ``stride`` tokens (no text is cut).

        Uses the tokenizer's own overflow logic, the one transformers uses for ``pipeline(..., stride=N)``.
        """
        tokenizer = self._window_tokenizer(stride)
        encodings = tokenizer.encode_batch([replace_lone_surrogates(t) for t in texts])
        return [[encoding, *encoding.overflowing] for encoding in encodings]

    def _window_tokenizer(self, stride: int) -> Any:
        # One tokenizer per stride: enable_truncation mutates the tokenizer, and calls may run concurrently.
        with self._lock:
            tokenizer = self._windowed.get(stride)
            if tokenizer is None:
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_str(self._json)
                tokenizer.no_padding()
                tokenizer.enable_truncation(self.max_length, stride=stride, strategy="longest_first", direction="right")
                self._windowed[stride] = tokenizer
            return tokenizer
