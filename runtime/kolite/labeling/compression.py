"""Compressed inputs (.gz, .bz2, .xz), decompressed on the fly; a corrupt or truncated stream is a clear error.

Each codec fails its own way (``EOFError`` when cut short, ``OSError``/``BadGzipFile``, ``LZMAError``,
``zlib.error`` for bad data): :func:`open_binary` turns all of them into one :class:`CorruptInputError` that names
the file, so readers can keep the rows before it instead of ending in a traceback.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from kolite.errors import CorruptInputError

__all__ = ["COMPRESSIONS", "compression_of", "open_binary", "strip_compression"]

# Suffix → opener of the decompressed bytes. Output is never compressed: compress the finished file instead.
COMPRESSIONS: dict[str, Callable[..., IO[bytes]]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_FAILURES = (EOFError, OSError, lzma.LZMAError, zlib.error)


def compression_of(path: str | Path) -> str | None:
    """``.gz``/``.bz2``/``.xz`` when ``path`` names a compressed file, else None."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in COMPRESSIONS else None


def strip_compression(suffixes: list[str]) -> list[str]:
    """``[".csv", ".gz"]`` → ``[".csv"]``: the suffixes that name the format inside."""
    return suffixes[:-1] if suffixes and suffixes[-1].lower() in COMPRESSIONS else suffixes


class _Guarded(io.RawIOBase):
    """The decompressed bytes; any decompression failure becomes :class:`CorruptInputError`."""

    def __init__(self, stream: IO[bytes], path: Path, kind: str) -> None:
        super().__init__()
        self._stream, self._path, self._kind = stream, path, kind
        self.offset = 0  # decompressed bytes handed out so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._stream.read1(len(buffer))  # one step: a later failure loses no bytes read before
        except _FAILURES as exc:
            reason = str(exc) or type(exc).__name__
            raise CorruptInputError(
                f"{self._path.name} is corrupt or truncated after {self.offset:,} decompressed bytes "
                f"({self._kind}: {reason})"
            ) from None
        buffer[: len(data)] = data
        self.offset += len(data)
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when its suffix names a compression (``.gz``, ``.bz2``, ``.xz``)."""
    kind = compression_of(path)
    if kind is None:
        return open(path, "rb")
    return io.BufferedReader(_Guarded(COMPRESSIONS[kind](path, "rb"), path, kind.lstrip(".")))
