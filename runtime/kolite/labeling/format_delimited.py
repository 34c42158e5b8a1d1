r'''CSV, TSV and raw TSV (no quoting, as NSMC and most TSV corpora ship): read line by line with the stdlib, no limit
on a cell's size.

csv and tsv follow the usual CSV quoting (what pandas and Arrow read and write). tsv-raw has no quoting at all: a
field is whatever lies between two tabs (the Hugging Face NSMC loader reads it with QUOTE_NONE); in it a cell like
``"""좋다"""`` keeps its quotes. On output ``None`` → empty cell, lists/dicts → JSON text; undecodable bytes of the
input are written back unchanged, other lone surrogates as U+FFFD.
'''

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from kolite.input_decoding import ESCAPE
from kolite.labeling.formats import Chunk, FileFormat, chunked, open_text, register
from kolite.labeling.writers import cell_value, merged_rows

__all__ = ["DIALECTS", "DelimitedFormat"]

DIALECTS: dict[str, dict[str, Any]] = {
    "csv": {"delimiter": ","},
    "tsv": {"delimiter": "\t"},
    "tsv-raw": {"delimiter": "\t", "quoting": csv.QUOTE_NONE, "quotechar": None},
}
# A text cell may be long (a whole article); the stdlib default of 128 KiB would abort the job on one big cell.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
_RAW_ESCAPES = str.maketrans({"\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _raw_cell(value: Any) -> Any:
    # tsv-raw cannot quote: a tab or newline (only possible in cells from other formats) is written as \t, \n.
    value = cell_value(value)
    return value.translate(_RAW_ESCAPES) if isinstance(value, str) else value


def _header(reader: Iterator[list[str]]) -> list[str] | None:
    header = next(reader, None)
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]  # a UTF-8 BOM left by an explicit --encoding utf-8 (Excel writes one)
    return header


class DelimitedFormat(FileFormat):
    """A header line, then one row per record; fields split by the dialect's delimiter."""

    header_rows: ClassVar[int] = 1

    def __init__(self, name: str, extensions: tuple[str, ...], part_suffix: str, family: str = "") -> None:
        self.name, self.extensions, self.part_suffix, self.family = name, extensions, part_suffix, family  # type: ignore[misc]
        self.dialect = DIALECTS[name]

    def columns(self, path: Path, encoding: str) -> list[str]:
        with open_text(path, encoding) as handle:
            return _header(csv.reader(handle, **self.dialect)) or []

    def chunks(self, path: Path, chunk_rows: int, encoding: str) -> Iterator[Chunk]:
        return chunked(self._rows(path, encoding), chunk_rows, self.columns(path, encoding))

    def _rows(self, path: Path, encoding: str) -> Iterator[tuple[dict[str, Any], str | None]]:
        with open_text(path, encoding) as handle:
            reader = csv.reader(handle, **self.dialect)
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

    def render(self, chunk: Chunk, results: dict[str, list[Any]]) -> bytes:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, **self.dialect, lineterminator="\n")
        columns = [*chunk.columns, *results]
        writer.writerow(columns)
        cell = _raw_cell if self.name == "tsv-raw" else cell_value
        for row in merged_rows(chunk, results):
            writer.writerow([cell(row.get(name)) for name in columns])
        return buffer.getvalue().encode("utf-8", errors=ESCAPE)

    def concat(self, parts: Sequence[Path], out: Path) -> None:
        with open(out, "wb") as sink:
            self._concat(parts, sink)

    def _concat(self, parts: Sequence[Path], out: Any) -> None:
        headers = []
        for part in parts:
            with open(part, "rb") as handle:
                headers.append(handle.readline())
        if len(set(headers)) <= 1:  # the usual case: copy bytes, no re-parsing
            out.write(headers[0] if headers else b"")
            for part in parts:
                with open(part, "rb") as handle:
                    handle.readline()
                    shutil.copyfileobj(handle, out, 1 << 20)
            return
        # JSONL rows with different keys → parts with different headers: write the union of the columns.
        columns: dict[str, None] = {}
        for header in headers:
            line = header.decode("utf-8", errors=ESCAPE)
            columns.update(dict.fromkeys(next(csv.reader([line], **self.dialect), [])))
        text = io.TextIOWrapper(out, encoding="utf-8", errors=ESCAPE, newline="")
        writer = csv.DictWriter(text, list(columns), **self.dialect, lineterminator="\n")
        writer.writeheader()
        for part in parts:
            with open(part, encoding="utf-8", errors=ESCAPE, newline="") as handle:
                writer.writerows(csv.DictReader(handle, **self.dialect))
        text.flush()
        text.detach()


# ``.txt`` is TSV because that is what Korean corpora (NSMC...) ship as.
register(DelimitedFormat("csv", (".csv",), "csv"))
register(DelimitedFormat("tsv", (".tsv", ".tab", ".txt"), "tsv", family="tsv"))
register(DelimitedFormat("tsv-raw", (), "tsv", family="tsv"))
