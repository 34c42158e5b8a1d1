"""Unicode normalisation before tokenizing, with a map from the normalised text back to the original string.

Korean text often arrives decomposed (NFD): macOS file names and clipboards, some web forms and scraped corpora
spell 한 as the three jamo ᄒ ᅡ ᆫ. The seeds' vocabularies hold composed syllables only, so NFD text tokenizes to
[UNK] and the model's answers are silently wrong. kolite normalises every text to NFC first (the manifest records
it; ``kolite.load(..., normalization="none")`` turns it off), so the NFD and NFC forms of a text get the same
tokens, labels and scores.

Entity offsets must still index the string the user sent. ``tokenizers``' own NFC normalizer loses that
alignment (a composed syllable maps back to its first jamo only), so kolite normalises segment by segment: the
text is cut before every character that NFC can never merge with what precedes it (a "stable starter"); each
segment is normalised on its own and, if it changed, every character it yields maps to the whole original
segment. Concatenating the segments gives exactly ``unicodedata.normalize("NFC", text)``: canonical reordering
never crosses a starter, and composition across a stable starter cannot happen by definition.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["NORMALIZATIONS", "NormalizedText", "normalize"]

NORMALIZATIONS = ("NFC", "none")
# Hangul vowel (V) and trailing consonant (T) jamo: starters that compose with the syllable before them
# (L+V -> LV, LV+T -> LVT). unicodedata lists no decomposition for precomposed syllables, so they are added here.
_HANGUL_BACK_COMPOSING = (range(0x1161, 0x1176), range(0x11A8, 0x11C3))


@dataclass(frozen=True)
class NormalizedText:
    """The text the tokenizer sees and, when it differs from the original, where each of its characters came
    from: ``starts[i]:ends[i]`` is the span of the original string that produced normalised character ``i``."""

    text: str
    starts: np.ndarray | None = None  # None: identity (the common case: the text was already NFC)
    ends: np.ndarray | None = None

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """A ``[start, end)`` span of the normalised text as a span of the original string."""
        if self.starts is None or self.ends is None:
            return start, end
        if end <= start:
            position = int(self.starts[start]) if start < len(self.starts) else int(self.ends[-1])
            return position, position
        return int(self.starts[start]), int(self.ends[end - 1])


def normalize(text: str, form: str = "NFC") -> NormalizedText:
    """``text`` normalised to ``form`` (``NFC`` or ``none``), with the map back to the original."""
    if form == "none" or unicodedata.is_normalized("NFC", text):
        return NormalizedText(text)
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for match in _segments().finditer(text):
        segment = match.group()
        begin, end = match.span()
        normalized = unicodedata.normalize("NFC", segment)
        pieces.append(normalized)
        if normalized == segment:
            starts.extend(range(begin, end))
            ends.extend(range(begin + 1, end + 1))
        else:
            starts.extend([begin] * len(normalized))
            ends.extend([end] * len(normalized))
    result = "".join(pieces)
    if result != unicodedata.normalize("NFC", text):  # cannot happen by construction; never return a wrong map
        whole = len(text)
        return NormalizedText(
            unicodedata.normalize("NFC", text),
            np.zeros(len(result), dtype=np.int64),
            np.full(len(result), whole, dtype=np.int64),
        )
    return NormalizedText(result, np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))


@lru_cache(maxsize=1)
def _segments() -> re.Pattern[str]:
    """A segment: any character, then every following character that is not a stable starter."""
    joining = sorted(_joining_characters())
    ranges = []
    start = previous = joining[0]
    for code in joining[1:]:
        if code != previous + 1:
            ranges.append((start, previous))
            start = code
        previous = code
    ranges.append((start, previous))
    char_class = "".join(f"{_escape(a)}-{_escape(b)}" if a != b else _escape(a) for a, b in ranges)
    return re.compile(f"[\\s\\S][{char_class}]*")


def _escape(code: int) -> str:
    return f"\\U{code:08x}"


def _joining_characters() -> set[int]:
    """Characters NFC may merge with or reorder against what precedes them: combining marks (ccc != 0),
    characters whose decomposition starts with one, and starters that are the second half of a composition."""
    found: set[int] = {code for block in _HANGUL_BACK_COMPOSING for code in block}
    for code in range(0x110000):
        char = chr(code)
        if unicodedata.combining(char):
            found.add(code)
            continue
        decomposition = unicodedata.decomposition(char)
        if not decomposition or decomposition.startswith("<"):
            continue
        parts = [int(part, 16) for part in decomposition.split()]
        if unicodedata.combining(unicodedata.normalize("NFD", char)[0]):
            found.add(code)
        composes = len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == char
        if composes and not unicodedata.combining(chr(parts[1])):
            found.add(parts[1])  # a starter that composes backwards (e.g. U+0D3E in Malayalam)
    return found
