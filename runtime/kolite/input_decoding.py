"""Reading untrusted text files: which encoding they are in, undecodable bytes kept, JSON lines parsed safely.

Shared by ``kolite predict --input`` and ``kolite label``:

* :func:`choose_encoding` — ``auto`` reads a BOM (UTF-8, UTF-16, UTF-32), else takes UTF-8 when the sample is valid
  UTF-8, else asks charset-normalizer (CP949 is preferred to EUC-KR, its subset: what Excel and Korean public-data
  portals write). A named encoding is checked and used as given.
* :data:`ESCAPE` — the codec error handler for input: each undecodable byte ``b`` becomes U+DC00+b (for bytes
  >= 0x80 exactly Python's ``surrogateescape``), so a bad byte costs its row, not the file; on output it writes the
  original byte back (U+DC80..U+DCFF) or U+FFFD (any other lone surrogate).
* :func:`loads_json_line` — ``json.loads`` that turns every way a line can fail (nesting bombs, 5,000-digit
  integers, duplicate keys...) into :class:`JsonLineError` instead of a crash.
"""

from __future__ import annotations

import codecs
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from kolite.errors import KoliteError

__all__ = [
    "AUTO",
    "ESCAPE",
    "MAX_JSON_DEPTH",
    "EncodingChoice",
    "JsonLineError",
    "check_encoding",
    "choose_encoding",
    "display_name",
    "escaped_bytes",
    "iter_lines",
    "loads_json_line",
    "prefixed",
]

AUTO = "auto"
ESCAPE = "kolite-escape"
# Deeper JSON is refused: Python's parser recurses, and its limit depends on the caller's stack depth.
MAX_JSON_DEPTH = 128
# How much of a file the detection reads at most, and how many bytes of non-ASCII lines it wants to see.
SAMPLE_LIMIT = 8 << 20
NON_ASCII_WANTED = 64 << 10
_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# charset-normalizer names → the codec to decode with. CP949 (Windows' Korean code page, UHC) is a superset of
# EUC-KR: decoding an EUC-KR file as CP949 gives the same text, and a "EUC-KR" file with 똠 or 뷁 still decodes.
_PREFERRED = {"euc_kr": "cp949", "cp949": "cp949"}
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_ESCAPES = re.compile("[\udc00-\udcff]+")
_VALID_NON_ASCII = re.compile("[^\x00-\x7f\udc00-\udcff]+")
# A UTF-8 file with a few corrupt bytes is still UTF-8 (those rows get an error); Korean CP949 read as UTF-8
# decodes about 20 % of its non-ASCII bytes by accident (50 % in a 4-syllable sample).
UTF8_MAJORITY = 0.8
_MAX_DIGITS = getattr(sys, "get_int_max_str_digits", lambda: 4300)()


def _escape(error: UnicodeError) -> tuple[bytes | str, int]:
    bad = error.object[error.start : error.end]  # type: ignore[attr-defined]
    if isinstance(error, UnicodeDecodeError):
        return "".join(chr(0xDC00 + b) for b in bad), error.end
    if not isinstance(error, UnicodeEncodeError):
        raise error
    if all("\udc80" <= c <= "\udcff" for c in bad):  # undecodable input bytes: written back as they were
        return bytes(ord(c) - 0xDC00 for c in bad), error.end
    # As bytes: the UTF-8 encoder accepts only ASCII text from an error handler.
    return ("\ufffd" * len(bad)).encode(error.encoding, errors="replace"), error.end


codecs.register_error(ESCAPE, _escape)


def escaped_bytes(text: str) -> tuple[int, bytes] | None:
    """Position and original bytes of the first run of undecodable bytes in ``text`` (decoded with ESCAPE)."""
    match = _ESCAPES.search(text)
    if match is None:
        return None
    return match.start(), bytes(ord(c) - 0xDC00 for c in match.group())


def display_name(encoding: str) -> str:
    """``utf-8-sig`` → ``UTF-8``, ``cp949`` → ``CP949``: how error messages name an encoding."""
    name = codecs.lookup(encoding).name
    return "UTF-8" if name == "utf-8-sig" else name.upper().replace("_", "-")


def check_encoding(name: str) -> str:
    """The codec's canonical name; a :class:`KoliteError` for a name Python does not know."""
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise KoliteError(f"unknown encoding {name!r} (e.g. utf-8, cp949, euc-kr, utf-16)") from None
    if not codec._is_text_encoding:  # base64, rot13...: not something a file of text is stored in
        raise KoliteError(f"{name!r} is not a text encoding")
    return codec.name


@dataclass(frozen=True)
class EncodingChoice:
    """The codec a file is decoded with, how it was chosen, and how sure that is (1.0 = a BOM, valid UTF-8...)."""

    encoding: str
    how: str
    confidence: float = 1.0

    @property
    def name(self) -> str:
        return display_name(self.encoding)

    @property
    def ascii_compatible(self) -> bool:
        """True when every 0x0A byte is a newline (not so in UTF-16/32, where it is half of many characters)."""
        return not self.encoding.startswith(("utf-16", "utf-32"))

    def describe(self) -> str:
        """E.g. ``CP949 encoding (detected by charset-normalizer, confidence 0.98; --encoding overrides)``."""
        if self.how == "detected":
            how = f"detected by charset-normalizer, confidence {self.confidence:.2f}; --encoding overrides"
        else:
            how = self.how
        return f"{self.name} encoding ({how})"


def _sample(stream: IO[bytes]) -> tuple[bytes, bool]:
    """The head of ``stream``: until enough non-ASCII bytes were seen or SAMPLE_LIMIT; True if that is all of it."""
    blocks: list[bytes] = []
    size = non_ascii = 0
    while size < SAMPLE_LIMIT and non_ascii < NON_ASCII_WANTED:
        block = stream.read(min(1 << 20, SAMPLE_LIMIT - size))
        if not block:
            return b"".join(blocks), True
        blocks.append(block)
        size += len(block)
        non_ascii += len(_NON_ASCII.findall(block))
    return b"".join(blocks), False


def _utf8_share(sample: bytes, complete: bool) -> float:
    """Of the sample's non-ASCII bytes, the share that decodes as UTF-8 (1.0: valid UTF-8)."""
    text = codecs.getincrementaldecoder("utf-8")(errors=ESCAPE).decode(sample, final=complete)
    bad = sum(len(run) for run in _ESCAPES.findall(text))
    if not bad:
        return 1.0
    good = len("".join(_VALID_NON_ASCII.findall(text)).encode("utf-8"))
    return good / (good + bad)


def _non_ascii_lines(sample: bytes, limit: int = 256 << 10) -> bytes:
    # The lines worth looking at: a mostly-ASCII CSV (ids, dates) would drown its Korean column otherwise.
    lines = [line for line in sample.split(b"\n")[:-1] if _NON_ASCII.search(line)] or [sample]
    picked, size = [], 0
    for line in lines:
        picked.append(line)
        size += len(line) + 1
        if size >= limit:
            break
    return b"\n".join(picked)


def _looks_wide(sample: bytes) -> bool:
    """Many NUL bytes: UTF-16/32 without a BOM (a stray NUL in a UTF-8 file does not count)."""
    head = sample[:4096]
    return head.count(0) > len(head) // 8


def _detect(sample: bytes) -> EncodingChoice | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    data = sample[: 256 << 10] if _looks_wide(sample) else _non_ascii_lines(sample)
    matches = list(from_bytes(data))
    if not matches:
        return None
    best = matches[0]
    korean = next((m for m in matches if m.encoding in _PREFERRED and m.chaos <= best.chaos), None)
    chosen = korean or best
    return EncodingChoice(_PREFERRED.get(chosen.encoding, chosen.encoding), "detected", round(1.0 - chosen.chaos, 2))


def choose_encoding(stream: IO[bytes], requested: str = AUTO) -> tuple[EncodingChoice, bytes]:
    """The encoding of ``stream`` and the bytes read from it to decide (put them back with :func:`prefixed`).

    A named encoding is only checked. ``auto``: a BOM decides; else valid UTF-8 is UTF-8; else charset-normalizer
    guesses (CP949 for Korean); if it cannot, UTF-8 — then undecodable rows get an error and the user a hint.
    """
    if requested.lower() != AUTO:
        encoding = check_encoding(requested)
        if encoding not in ("utf-16", "utf-32"):
            return EncodingChoice(encoding, "given"), b""
        # Python's streaming UTF-16/32 decoders insist on a BOM: without one, read little-endian (as Windows writes).
        head = stream.read(4)
        if any(head.startswith(bom) for bom, name in _BOMS if name == encoding):
            return EncodingChoice(encoding, "given"), head
        return EncodingChoice(f"{encoding}-le", "given, no byte order mark: little-endian"), head
    sample, complete = _sample(stream)
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return EncodingChoice(encoding, "byte order mark"), sample
    share = 0.0 if _looks_wide(sample) else _utf8_share(sample, complete)
    if share == 1.0:
        return EncodingChoice("utf-8", "valid UTF-8" if _NON_ASCII.search(sample) else "ASCII"), sample
    if share >= UTF8_MAJORITY:
        return EncodingChoice("utf-8", "mostly valid UTF-8: rows with other bytes get an error", share), sample
    detected = _detect(sample)
    if detected is None:
        return EncodingChoice("utf-8", "not UTF-8 and no better guess: pass --encoding", 0.0), sample
    return detected, sample


class _Prefixed(io.RawIOBase):
    """A binary stream that first yields ``head`` (bytes already read for detection), then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def prefixed(head: bytes, stream: IO[bytes]) -> IO[bytes]:
    """``stream`` with ``head`` put back in front of it (works for stdin, which cannot seek)."""
    return io.BufferedReader(_Prefixed(head, stream))


class JsonLineError(ValueError):
    """A line that is not usable JSON; ``str(error)`` is the message for the line's ``error`` field."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python keeps the last of two equal keys, other parsers the first: which text is meant is anyone's guess.
    record = dict(pairs)
    if len(record) != len(pairs):
        duplicate = next(key for key, n in Counter(key for key, _ in pairs).items() if n > 1)
        raise JsonLineError(f"invalid JSON: duplicate key {duplicate!r}")
    return record


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def loads_json_line(line: str) -> Any:
    """One JSON value from one line of untrusted input; :class:`JsonLineError` names what is wrong with it.

    NaN and Infinity are accepted as Python's ``json`` does (and written back the same way).
    """
    try:
        value = json.loads(line, object_pairs_hook=_no_duplicates)
    except JsonLineError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonLineError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise JsonLineError(f"invalid JSON: nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    except ValueError:  # an integer of more digits than int() converts (sys.set_int_max_str_digits)
        raise JsonLineError(f"invalid JSON: number too long (over {_MAX_DIGITS} digits)") from None
    if line.count("[") + line.count("{") > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise JsonLineError(f"invalid JSON: nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return value


def iter_lines(stream: IO[bytes], choice: EncodingChoice) -> Iterator[str]:
    """Text lines of ``stream`` (split on ``\\n`` only, ``\\r\\n`` kept), undecodable bytes escaped (ESCAPE)."""
    text = io.TextIOWrapper(stream, encoding=choice.encoding, errors=ESCAPE, newline="\n")  # type: ignore[arg-type]
    yield from text
