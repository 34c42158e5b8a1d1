"""File formats: name ↔ extension, and streaming readers that yield the input in fixed-size chunks of rows.

Readers never hold more than one chunk: CSV/TSV and JSONL are read line by line (stdlib, no limit on a cell's
size), Parquet by record batches (pyarrow). A row is a ``dict`` column → value; every input column is kept as it
was read. Text is decoded with the job's encoding; bytes it cannot decode are kept as escapes (flagged in the text
column, written back unchanged to CSV/TSV outputs) instead of aborting the file.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kolite.errors import CorruptInputError, KoliteError
from kolite.input_decoding import ESCAPE, JsonLineError, loads_json_line
from kolite.labeling.compression import open_binary, strip_compression

__all__ = [
    "DIALECTS",
    "FORMATS",
    "Chunk",
    "detect_format",
    "iter_chunks",
    "parse_jsonl_line",
    "read_header",
    "require_pyarrow",
    "same_family",
]

# Extension → format. ``.txt`` is TSV because that is what Korean corpora (NSMC...) ship as.
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
FORMATS = ("csv", "tsv", "tsv-raw", "jsonl", "parquet")
# csv and tsv follow the usual CSV quoting (what pandas and Arrow read and write). tsv-raw has no quoting at all:
# a field is whatever lies between two tabs, as in NSMC and most TSV corpora (the Hugging Face NSMC loader reads it
# with QUOTE_NONE); in it a cell like `"""좋다"""` keeps its quotes.
DIALECTS: dict[str, dict[str, Any]] = {
    "csv": {"delimiter": ","},
    "tsv": {"delimiter": "\t"},
    "tsv-raw": {"delimiter": "\t", "quoting": csv.QUOTE_NONE, "quotechar": None},
}
RAW_LINE_COLUMN = "raw_line"  # where a JSONL line that is not a JSON object is kept (nothing is dropped)

# A text cell may be long (a whole article); the stdlib default of 128 KiB would abort the job on one big cell.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


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


def require_pyarrow(purpose: str = "Parquet files") -> Any:
    try:
        import pyarrow
    except ImportError as exc:
        raise KoliteError(f"{purpose} need pyarrow: pip install 'kolite[label]'") from exc
    return pyarrow


def same_family(fmt: str, other: str) -> bool:
    return fmt.split("-")[0] == other.split("-")[0]


def detect_format(path: str | Path, given: str | None = None) -> str:
    """The format named by ``given`` or by the file extension (``.gz``/``.bz2``/``.xz`` are looked through)."""
    if given:
        if given not in FORMATS:
            raise KoliteError(f"unknown format {given!r}; choose one of {', '.join(FORMATS)}")
        return given
    suffixes = strip_compression([s.lower() for s in Path(path).suffixes])
    if suffixes and suffixes[-1] in EXTENSIONS:
        return EXTENSIONS[suffixes[-1]]
    raise KoliteError(
        f"cannot tell the format of {path} from its extension; name it .csv/.tsv/.jsonl/.parquet "
        "or pass --input-format/--output-format"
    )


def _open_text(path: Path, encoding: str, newline: str = "") -> IO[str]:
    # ESCAPE: an undecodable byte becomes a lone surrogate (one row's problem), not an exception (the file's).
    return io.TextIOWrapper(open_binary(path), encoding=encoding, errors=ESCAPE, newline=newline)


def _header(reader: Iterator[list[str]]) -> list[str] | None:
    header = next(reader, None)
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]  # a UTF-8 BOM left by an explicit --encoding utf-8 (Excel writes one)
    return header


def _iter_csv(path: Path, fmt: str, encoding: str) -> Iterator[tuple[dict[str, Any], str | None]]:
    with _open_text(path, encoding) as handle:
        reader = csv.reader(handle, **DIALECTS[fmt])
        header = _header(reader)
        if header is None:
            return
        width = len(header)
        for fields in reader:
            error = None
            if len(fields) != width:
                error = f"row has {len(fields)} fields, header has {width}"
                if len(fields) > width:
                    error += f" (extra fields: {json.dumps(fields[width:], ensure_ascii=False)})"
                fields = fields[:width] + [""] * (width - len(fields))
            yield dict(zip(header, fields, strict=True)), error


def parse_jsonl_line(line: str) -> tuple[dict[str, Any], str | None]:
    """One JSON Lines record → (row, read error). A line that is not a JSON object is kept whole, not dropped."""
    try:
        value = loads_json_line(line)
    except JsonLineError as exc:
        return {RAW_LINE_COLUMN: line}, str(exc)
    if not isinstance(value, dict):
        return {RAW_LINE_COLUMN: line}, f"not a JSON object ({type(value).__name__})"
    return value, None


def _iter_jsonl(path: Path, encoding: str) -> Iterator[tuple[dict[str, Any], str | None]]:
    # Lines end at \n only: a lone \r is JSON whitespace, not a record separator.
    with _open_text(path, encoding, newline="\n") as handle:
        for line in handle:
            stripped = line.rstrip("\r\n")
            if stripped.strip():  # blank lines are not records in JSON Lines
                yield parse_jsonl_line(stripped)


def read_header(path: Path, fmt: str, encoding: str = "utf-8") -> list[str]:
    """The column names of a CSV/TSV file (its first record)."""
    with _open_text(path, encoding) as handle:
        return _header(csv.reader(handle, **DIALECTS[fmt])) or []


def _chunked(rows: Iterator[tuple[dict[str, Any], str | None]], chunk_rows: int, header: list[str]) -> Iterator[Chunk]:
    # ``header``: the CSV/TSV columns, so that every part (even of a header-only file) has them. JSONL has none:
    # a part's columns are the keys of its rows, in order of appearance.
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


def _iter_parquet(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    pyarrow = require_pyarrow()

    with open_parquet(path) as parquet:
        schema = parquet.schema_arrow
        start = index = 0
        batches = parquet.iter_batches(batch_size=chunk_rows)
        while True:
            try:
                batch = next(batches, None)
            except (OSError, pyarrow.ArrowException) as exc:
                yield Chunk(index, start, [], list(schema.names), arrow_schema=schema, corrupt=_corrupt(path, exc))
                return
            if batch is None:
                break
            yield Chunk(index, start, batch.to_pylist(), list(schema.names), arrow_schema=schema)
            start += batch.num_rows
            index += 1
        if start == 0:
            yield Chunk(0, 0, [], list(schema.names), arrow_schema=schema)


def _corrupt(path: Path, exc: Exception) -> str:
    return f"{path.name} is corrupt or truncated ({type(exc).__name__}: {exc})"


def open_parquet(path: Path) -> Any:
    """A ``pyarrow.parquet.ParquetFile``; a file that is not (or no longer) Parquet is a :class:`KoliteError`."""
    pyarrow = require_pyarrow()
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (OSError, pyarrow.ArrowException) as exc:
        raise CorruptInputError(_corrupt(path, exc)) from None


def iter_chunks(path: str | Path, fmt: str, chunk_rows: int, encoding: str = "utf-8") -> Iterator[Chunk]:
    """The input as consecutive chunks of ``chunk_rows`` rows (the last may be shorter; an empty file → 1 empty)."""
    path = Path(path)
    if not path.is_file():
        raise KoliteError(f"input file {path} not found")
    if fmt == "parquet":
        return _iter_parquet(path, chunk_rows)
    if fmt == "jsonl":
        return _chunked(_iter_jsonl(path, encoding), chunk_rows, [])
    return _chunked(_iter_csv(path, fmt, encoding), chunk_rows, read_header(path, fmt, encoding))
