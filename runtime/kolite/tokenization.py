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
# The Rust tokenizer's cost per character grows with the length of the string it is given (its normalised-string
# bookkeeping), so a long text to be windowed is tokenized in pieces of about this many characters, cut before a
# space, and the windows are cut from the joined tokens (TextEncoder._long_windows): work linear in the text.
PIECE_CHARS = 4096
# The probe that checks, once per tokenizer, that tokenizing in pieces gives exactly the whole text's tokens.
_PIECE_PROBE = "홍길동은 1998년 서울에서 태어났다.  KOLITE test, co-op... 삼성전자(주) 본사는 수원에 있다!\t끝 "


def replace_lone_surrogates(text: str) -> str:
    """Lone surrogates (e.g. from ``errors="surrogateescape"``) cannot be encoded to UTF-8 and crash the Rust
    tokenizer. Each becomes U+FFFD: one code point for one, so character offsets into the original stay valid."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


@dataclass(frozen=True)
class Window:
    """One window of a long text tokenized in pieces: the fields of ``tokenizers.Encoding`` the runtime reads."""

    ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]
    special_tokens_mask: list[int]

    @property
    def overflowing(self) -> list[Window]:
        return []


def split_pieces(text: str, size: int = PIECE_CHARS) -> list[tuple[int, str]]:
    """``text`` as consecutive ``(start, piece)``; each piece after the first starts at a space found at or after
    ``size`` characters into the one before (a text without spaces stays whole)."""
    pieces, start = [], 0
    while len(text) - start > size:
        cut = text.find(" ", start + size)
        if cut < 0:
            break
        pieces.append((start, text[start:cut]))
        start = cut
    pieces.append((start, text[start:]))
    return pieces


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
    # Per text, the NER aggregation its decode applies: the fidelity guard re-runs a text only if int8 error could
    # change what that aggregation reads (kolite.guard). None (a text's entry, or the whole field): unknown, e.g. raw
    # logits, and every check applies.
    aggregations: tuple[str | None, ...] | None = None

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
        aggregations = None
        if any(p.aggregations is not None for p in parts):
            aggregations = tuple(a for p in parts for a in (p.aggregations or (None,) * len(p)))
        return Encoded(
            tuple(t for p in parts for t in p.texts),
            tuple(n for p in parts for n in p.normalized),
            tuple(w for p in parts for w in p.windows),
            tuple(t for p in parts for t in p.truncated),
            aggregations,
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
        self.tokenized_chars = 0  # characters given to the tokenizer for windowing (how tests count the work)
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
            windows = self._windows([n.text for n in normalized], stride)
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

    def _windows(self, texts: list[str], stride: int) -> list[tuple[Any, ...]]:
        """Every text as windows of ``max_length`` tokens overlapping by ``stride`` (transformers' overflow)."""
        long = [len(t) > PIECE_CHARS for t in texts] if self._pieces_exact else [False] * len(texts)
        short = [t for t, is_long in zip(texts, long, strict=True) if not is_long]
        self.tokenized_chars += sum(map(len, short))
        encodings = iter(self._window_tokenizer(stride).encode_batch(short) if short else [])
        windows: list[tuple[Any, ...]] = []
        for text, is_long in zip(texts, long, strict=True):
            if is_long:
                windows.append(self._long_windows(text, stride))
            else:
                encoding = next(encodings)
                windows.append((encoding, *encoding.overflowing))
        return windows

    def _long_windows(self, text: str, stride: int) -> tuple[Window, ...]:
        # Exactly Encoding.truncate(capacity, stride) + the post-processor, on the joined tokens of the pieces.
        ids, tokens, offsets = self._piece_tokens(text)
        capacity = self.window_capacity
        step = capacity - stride
        head, tail = self._special_layout
        windows = []
        for start in range(0, max(len(ids), 1), step):
            stop = min(start + capacity, len(ids))
            windows.append(
                Window(
                    [*head[0], *ids[start:stop], *tail[0]],
                    [*head[1], *tokens[start:stop], *tail[1]],
                    [*head[2], *offsets[start:stop], *tail[2]],
                    [1] * len(head[0]) + [0] * (stop - start) + [1] * len(tail[0]),
                )
            )
            if stop == len(ids):
                break
        return tuple(windows)

    def _piece_tokens(self, text: str) -> tuple[list[int], list[str], list[tuple[int, int]]]:
        pieces = split_pieces(text)
        self.tokenized_chars += sum(len(piece) for _, piece in pieces)
        encodings = self._plain.encode_batch([piece for _, piece in pieces], add_special_tokens=False)
        ids: list[int] = []
        tokens: list[str] = []
        offsets: list[tuple[int, int]] = []
        for (start, _), encoding in zip(pieces, encodings, strict=True):
            ids.extend(encoding.ids)
            tokens.extend(encoding.tokens)
            offsets.extend((a + start, b + start) for a, b in encoding.offsets)
        return ids, tokens, offsets

    @cached_property
    def _plain(self) -> Any:
        tokenizer = self._new_tokenizer(0, "right")
        tokenizer.no_truncation()
        return tokenizer

    @cached_property
    def _special_layout(self) -> tuple[tuple[list, list, list], tuple[list, list, list]]:
        """(ids, tokens, offsets) of the special tokens the post-processor puts before and after a sequence."""
        probe = self._plain.encode("a", add_special_tokens=False)
        full = self._plain.post_process(probe)
        mask = full.special_tokens_mask
        first = mask.index(0) if 0 in mask else len(mask)
        after = first + len(probe.ids)
        parts = (full.ids, full.tokens, full.offsets)
        return tuple(p[:first] for p in parts), tuple(p[after:] for p in parts)  # type: ignore[return-value]

    @cached_property
    def _pieces_exact(self) -> bool:
        """Whether this tokenizer gives a text's tokens and offsets when fed its pieces (checked once, on a probe
        cut at every space): if not, long texts are tokenized whole, as before."""
        probe = _PIECE_PROBE * 3
        whole = self._plain.encode(probe, add_special_tokens=False)
        pieces = split_pieces(probe, size=1)
        parts = self._plain.encode_batch([piece for _, piece in pieces], add_special_tokens=False)
        ids = [i for part in parts for i in part.ids]
        offsets = [(a + s, b + s) for (s, _), part in zip(pieces, parts, strict=True) for a, b in part.offsets]
        return ids == whole.ids and offsets == [tuple(o) for o in whole.offsets]

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
