"""Which cells of the text column can be labelled, and why the others cannot.

A labelling job never drops a row: a cell that is not usable text gets a message in the ``error`` column and an
empty label. The rules (the same for every format and both engines):

* missing column / null / JSON ``null``  → ``"missing text"``
* a non-string value (JSONL number, bool, list, object) → ``"not text (int)"`` etc. — numbers are not silently
  stringified, because a numeric cell in a text column is almost always a shifted or broken row
* an empty or whitespace-only string → ``"empty text"`` (the runtime would classify it as ``[CLS][SEP]``, but in a
  dataset an empty cell is a data problem; ``--allow-empty`` labels it like the runtime does)
* bytes the input's encoding cannot decode (kept as escapes, see :mod:`kolite.input_decoding`) or lone
  surrogates → ``"undecodable text (not UTF-8)"`` (or ``not CP949``... when the input is read in another encoding)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "EMPTY_TEXT",
    "MISSING_TEXT",
    "UNDECODABLE_TEXT",
    "check_text",
    "has_surrogates",
    "replace_surrogates",
    "split_valid",
    "undecodable_text",
]

MISSING_TEXT = "missing text"
EMPTY_TEXT = "empty text"
UNDECODABLE_TEXT = "undecodable text (not UTF-8)"


def undecodable_text(encoding: str = "UTF-8") -> str:
    """The error of a cell holding bytes that ``encoding`` (a display name: UTF-8, CP949...) cannot decode."""
    return f"undecodable text (not {encoding})"


_SURROGATES = re.compile("[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    """True when ``text`` holds lone surrogates (undecodable bytes read with ``errors="surrogateescape"``)."""
    return _SURROGATES.search(text) is not None


def replace_surrogates(text: str) -> str:
    """Lone surrogates → U+FFFD, for outputs that must be valid UTF-8 (JSONL, Parquet)."""
    return _SURROGATES.sub("\ufffd", text)


def check_text(value: object, allow_empty: bool = False, encoding: str = "UTF-8") -> str | None:
    """The error message for a text cell, or None when it can be labelled (``encoding``: the input's)."""
    if value is None:
        return MISSING_TEXT
    if not isinstance(value, str):
        return f"not text ({type(value).__name__})"
    if has_surrogates(value):
        return undecodable_text(encoding)
    if not allow_empty and not value.strip():
        return EMPTY_TEXT
    return None


def split_valid(
    values: Sequence[object], allow_empty: bool = False, encoding: str = "UTF-8"
) -> tuple[list[int], list[str], list[str | None]]:
    """Positions and texts of the labelable cells, and the error (or None) of every cell."""
    errors = [check_text(value, allow_empty, encoding) for value in values]
    positions = [i for i, error in enumerate(errors) if error is None]
    texts = [values[i] for i in positions]
    return positions, texts, errors  # type: ignore[return-value]
