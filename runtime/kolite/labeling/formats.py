"""File formats of the labeller: one :class:`FileFormat` object per format, found by name in one registry.

A format knows everything about its files — extensions, whether its bytes are decoded with the job's encoding,
its columns, how it is read in chunks of rows, counted for the ETA, written as one part and how parts are joined
— so the job, the driver, the parts store and the CLI never ask which format they hold. The built-in formats live
in one module each (``format_delimited``: csv, tsv, tsv-raw; ``format_jsonl``; ``format_parquet``) and register
themselves; a new format is one module with a :class:`FileFormat` subclass and one :func:`register` call.

Readers never hold more than one chunk. A row is a ``dict`` column → value; every input column is kept as it was
read. Text is decoded with the job's encoding; bytes it cannot decode are kept as escapes (flagged in the text
column) instead of aborting the file.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from kolite.errors import CorruptInputError, KoliteError
from kolite.input_decoding import ESCAPE, EncodingChoice
from kolite.labeling.compression import compression_of, open_binary, strip_compression

__all__ = [
    "BUILTIN_MODULES",
    "Chunk",
    "FileFormat",
    "chunked",
    "detect_format",
    "format_names",
    "get_format",
    "iter_chunks",
    "open_text",
    "register",
    "require_pyarrow",
    "same_family",
]

# The modules of the built-in formats; each registers its formats when imported.
BUILTIN_MODULES = ("kolite.labeling.format_delimited", "kolite.labeling.format_jsonl", "kolite.labeling.format_parquet")


@dataclass
class Chunk:
    """``rows`` of the input starting at row ``start`` (0-based, header excluded); ``errors`` are read errors."""

    index: int
    start: int
    rows: list[dict[str, Any]]
    columns: list[str]
    read_errors: dict[int, str] = field(default_factory=dict)
    arrow_schema: Any = None  # the Parquet input's schema, so a Parquet output keeps the column types
    # Set on the last chunk when the input cannot be read past its rows (a truncated .gz...): why, for the user.
    corrupt: str | None = None


class FileFormat:
    """One labeller file format. Subclass it, set the class attributes, implement ``chunks`` and ``render`` (and
    ``columns`` when the file names its columns up front), then :func:`register` an instance."""

    name: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()  # file suffixes detected as this format, e.g. (".csv",)
    part_suffix: ClassVar[str] = ""  # suffix of its part files, e.g. "csv" (tsv-raw writes .tsv parts)
    family: ClassVar[str] = ""  # an output of the same family as the input keeps the input's format (tsv-raw)
    decoded: ClassVar[bool] = True  # text bytes decoded with the job's --encoding (False: Parquet stores UTF-8)
    header_rows: ClassVar[int] = 0  # lines before the first row, for the row-count estimate

    def columns(self, path: Path, encoding: str) -> list[str] | None:
        """The input's column names before reading rows; None when each row names its own (JSONL)."""
        return None

    def chunks(self, path: Path, chunk_rows: int, encoding: str) -> Iterator[Chunk]:
        """The input as consecutive chunks of ``chunk_rows`` rows (an empty file → one empty chunk)."""
        raise NotImplementedError

    def count_rows(self, path: Path, encoding: EncodingChoice | None = None) -> int | None:
        """Rows in the input, for the ETA (an estimate is fine; None: no ETA). Default: a newline count."""
        if compression_of(path) or (encoding is not None and not encoding.ascii_compatible):
            return None  # decompressing twice / UTF-16 (0x0A is half of many characters): a rate without an ETA
        lines, last = 0, b"\n"
        with open(path, "rb") as handle:
            while block := handle.read(1 << 22):
                lines += block.count(b"\n")
                last = block[-1:]
        lines += last != b"\n"  # a last line without newline
        return max(0, lines - self.header_rows)

    def render(self, chunk: Chunk, results: dict[str, list[Any]]) -> bytes:
        """The bytes of one part file (header/schema included, so every part is a readable file on its own)."""
        raise NotImplementedError

    def concat(self, parts: Sequence[Path], out: Path) -> None:
        """Join the parts, in order, into ``out``. Default: their bytes one after the other."""
        import shutil

        with open(out, "wb") as sink:
            for part in parts:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, sink, 1 << 20)


_REGISTRY: dict[str, FileFormat] = {}
_builtins_loaded = False


def register(fmt: FileFormat) -> FileFormat:
    """Make ``fmt`` known to ``kolite label`` (``--input-format``/``--output-format`` and its extensions)."""
    if not fmt.name or not fmt.part_suffix:
        raise ValueError("a file format needs a name and a part_suffix")
    _REGISTRY[fmt.name] = fmt
    return fmt


def _registry() -> dict[str, FileFormat]:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
    return _REGISTRY


def format_names() -> tuple[str, ...]:
    return tuple(_registry())


def get_format(name: str) -> FileFormat:
    formats = _registry()
    if name not in formats:
        raise KoliteError(f"unknown format {name!r}; choose one of {', '.join(formats)}")
    return formats[name]


def same_family(fmt: str, other: str) -> bool:
    return (get_format(fmt).family or fmt) == (get_format(other).family or other)


def detect_format(path: str | Path, given: str | None = None) -> str:
    """The format named by ``given`` or by the file extension (``.gz``/``.bz2``/``.xz`` are looked through)."""
    if given:
        return get_format(given).name
    suffixes = strip_compression([s.lower() for s in Path(path).suffixes])
    if suffixes:
        for fmt in _registry().values():
            if suffixes[-1] in fmt.extensions:
                return fmt.name
    extensions = "/".join(e for fmt in _registry().values() for e in fmt.extensions[:1])
    raise KoliteError(
        f"cannot tell the format of {path} from its extension; name it {extensions} "
        "or pass --input-format/--output-format"
    )


def iter_chunks(path: str | Path, fmt: str, chunk_rows: int, encoding: str = "utf-8") -> Iterator[Chunk]:
    """The input as consecutive chunks of ``chunk_rows`` rows (the last may be shorter; an empty file → 1 empty)."""
    path = Path(path)
    if not path.is_file():
        raise KoliteError(f"input file {path} not found")
    return get_format(fmt).chunks(path, chunk_rows, encoding)


def require_pyarrow(purpose: str = "Parquet files") -> Any:
    try:
        import pyarrow
    except ImportError as exc:
        raise KoliteError(f"{purpose} need pyarrow: pip install 'kolite[label]'") from exc
    return pyarrow


def open_text(path: Path, encoding: str, newline: str = "") -> IO[str]:
    """The (decompressed) file as text; ESCAPE: an undecodable byte costs its row, not the file."""
    return io.TextIOWrapper(open_binary(path), encoding=encoding, errors=ESCAPE, newline=newline)


def chunked(rows: Iterator[tuple[dict[str, Any], str | None]], chunk_rows: int, header: list[str]) -> Iterator[Chunk]:
    """Rows with their read error (or None) → chunks. ``header``: the columns every part has (even of a header-only
    file); without one (JSONL) a part's columns are the keys of its rows, in order of appearance. A
    :class:`CorruptInputError` ends the input: the rows read so far are still yielded, the chunk says why."""
    chunk = Chunk(0, 0, [], list(header))
    seen: dict[str, None] = dict.fromkeys(header)
    try:
        for row, error in rows:
            if len(chunk.rows) == chunk_rows:
                yield chunk
                chunk = Chunk(chunk.index + 1, chunk.start + chunk_rows, [], list(header))
                seen = dict.fromkeys(header)
            if error is not None:
                chunk.read_errors[len(chunk.rows)] = error
            chunk.rows.append(row)
            for name in () if header else row:
                if name not in seen:
                    seen[name] = None
                    chunk.columns.append(name)
    except CorruptInputError as exc:
        chunk.corrupt = str(exc)  # the rows read so far are still labelled and kept
    if chunk.rows or chunk.index == 0 or chunk.corrupt:
        yield chunk

