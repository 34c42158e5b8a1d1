"""Reading untrusted text files: which encoding they are in, undecodable bytes kept, JSON lines parsed safely.

Shared by ``kolite predict --input`` and ``kolite label``:

* :func:`choose_encoding` — ``auto`` never guesses what it cannot check. A BOM decides (UTF-8, UTF-16, UTF-32);
  else UTF-8 when the sample is valid UTF-8, or valid UTF-8 except some lines (those lines become per-row errors,
  never re-read in another codec); else CP949 when it decodes every line of the sample to Korean text; else a
  clear error asking for ``--encoding``. A named encoding is checked and used as given.
* CP949 (named, or chosen by ``auto``) is read with :data:`CP949`, which also joins KS X 1001 composition
  sequences (filler + three jamo, how EUC-KR spells the syllables it lacks) into one syllable, as Python's
  ``euc_kr`` codec does: an EUC-KR file reads the same under ``auto``, ``--encoding cp949`` and ``euc-kr``.
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

from kolite.errors import CorruptInputError, KoliteError
from kolite.korean_codec import CP949

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
_CP949_NAMES = ("cp949", CP949)
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_ESCAPES = re.compile("[\udc00-\udcff]+")
_HANGUL = re.compile("[\uac00-\ud7a3\u3131-\u318e]")
# CP949 is guessed only when most of what it decodes is Hangul (not hanja or symbols from Latin-1 bytes).
HANGUL_MAJORITY = 0.5
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
    if name == CP949:
        return "CP949"
    return "UTF-8" if name == "utf-8-sig" else name.upper().replace("_", "-")


def check_encoding(name: str) -> str:
    """The codec's canonical name; a :class:`KoliteError` for a name Python does not know."""
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise KoliteError(f"unknown encoding {name!r} (e.g. utf-8, cp949, euc-kr, utf-16)") from None
    if not codec._is_text_encoding:  # base64, rot13...: not something a file of text is stored in
        raise KoliteError(f"{name!r} is not a text encoding")
    return CP949 if codec.name in _CP949_NAMES else codec.name


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
        """E.g. ``CP949 encoding (detected: every line decodes as Korean CP949; --encoding overrides)``."""
        return f"{self.name} encoding ({self.how})"


def _sample(stream: IO[bytes]) -> tuple[bytes, bool]:
    """The head of ``stream``: until enough non-ASCII bytes were seen or SAMPLE_LIMIT; True if that is all of it."""
    blocks: list[bytes] = []
    size = non_ascii = 0
    read = getattr(stream, "read1", stream.read)  # one read at a time: a failing read loses no earlier bytes
    while size < SAMPLE_LIMIT and non_ascii < NON_ASCII_WANTED:
        try:
            block = read(min(1 << 20, SAMPLE_LIMIT - size))
        except CorruptInputError:  # a truncated .gz: decide on what is readable, the reader reports the rest
            return b"".join(blocks), False
        if not block:
            return b"".join(blocks), True
        blocks.append(block)
        size += len(block)
        non_ascii += len(_NON_ASCII.findall(block))
    return b"".join(blocks), False


def _sample_lines(sample: bytes, complete: bool) -> list[bytes]:
    """The sample's lines holding non-ASCII bytes; a line cut by the sample's end is left out (unless alone)."""
    lines = sample.split(b"\n")
    if not complete and len(lines) > 1:
        lines.pop()
    return [line for line in lines if _NON_ASCII.search(line)]


def _decodes(line: bytes, encoding: str) -> str | None:
    try:
        return line.decode(encoding)
    except UnicodeDecodeError:
        return None


def _utf8_line(line: bytes, last_cut: bool) -> str | None:
    # The last line of a sample cut mid-character is valid as far as it goes.
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        return decoder.decode(line, final=not last_cut)
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class _LineCounts:
    """How the sample's non-ASCII lines decode: ``utf8`` valid UTF-8 (``utf8_wide`` of them with a character of
    3+ bytes, e.g. Hangul — 2-byte sequences occur in CP949 bytes by chance), ``bad`` not UTF-8, ``cp949`` Korean
    text in CP949 (of the lines that are not valid UTF-8)."""

    utf8: int
    utf8_wide: int
    bad: int
    cp949: int


def _count(lines: list[bytes], complete: bool) -> _LineCounts:
    utf8 = wide = bad = cp949 = 0
    for number, line in enumerate(lines):
        text = _utf8_line(line, last_cut=not complete and number == len(lines) - 1)
        if text is not None:
            utf8 += 1
            wide += any(ord(c) >= 0x800 for c in text)
            continue
        bad += 1
        korean = _decodes(line, "cp949")
        if korean is not None:
            non_ascii = sum(1 for c in korean if ord(c) >= 0x80)
            cp949 += len(_HANGUL.findall(korean)) >= HANGUL_MAJORITY * non_ascii
    return _LineCounts(utf8, wide, bad, cp949)


def _looks_wide(sample: bytes) -> bool:
    """Many NUL bytes: UTF-16/32 without a BOM (a stray NUL in a UTF-8 file does not count)."""
    head = sample[:4096]
    return head.count(0) > len(head) // 8


def _line_count(sample: bytes, complete: bool) -> int:
    return sample.count(b"\n") + (complete and not sample.endswith(b"\n"))


def _guess(sample: bytes, complete: bool) -> EncodingChoice:
    """``auto`` without a BOM: UTF-8, mostly-UTF-8, CP949, or a :class:`KoliteError` asking for ``--encoding``."""
    if _looks_wide(sample):
        raise KoliteError(
            "the input looks like UTF-16 or UTF-32 without a byte order mark (many NUL bytes); "
            "pass --encoding utf-16-le, utf-16-be, utf-32-le or utf-32-be"
        )
    lines = _sample_lines(sample, complete)
    if not lines:
        return EncodingChoice("utf-8", "ASCII")
    counts = _count(lines, complete)
    if counts.bad == 0:
        return EncodingChoice("utf-8", "valid UTF-8")
    # Hangul-bearing UTF-8 lines are UTF-8 (CP949 bytes almost never form 3-byte sequences): the other lines are
    # corrupt rows of a UTF-8 file, reported row by row, never re-decoded in a codec that would garble the rest.
    if counts.utf8_wide and (counts.utf8 >= counts.bad or counts.cp949 < counts.bad):
        share = counts.utf8 / (counts.utf8 + counts.bad)
        return EncodingChoice("utf-8", "valid UTF-8 except some lines: those rows get an error", round(share, 2))
    if counts.cp949 == counts.bad and counts.utf8_wide == 0:
        return EncodingChoice(CP949, "detected: every line decodes as Korean CP949; --encoding overrides")
    # No codec explains the bad lines and they are a minority: stray bytes in a UTF-8 (or ASCII) file.
    if counts.cp949 == 0 and 2 * counts.bad <= _line_count(sample, complete):
        return EncodingChoice("utf-8", "UTF-8 except some undecodable lines: those rows get an error", 0.0)
    raise KoliteError(
        f"cannot tell the input's encoding: of {len(lines)} sampled lines with non-ASCII bytes {counts.utf8} are "
        f"UTF-8 and {counts.cp949} Korean CP949 (EUC-KR); pass --encoding (e.g. utf-8, cp949, utf-16)"
    )


def choose_encoding(stream: IO[bytes], requested: str = AUTO) -> tuple[EncodingChoice, bytes]:
    """The encoding of ``stream`` and the bytes read from it to decide (put them back with :func:`prefixed`).

    A named encoding is only checked. ``auto``: a BOM decides; else :func:`_guess` (UTF-8, UTF-8 with some bad
    lines, CP949) or a :class:`KoliteError` asking for ``--encoding``.
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
    return _guess(sample, complete), sample


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
