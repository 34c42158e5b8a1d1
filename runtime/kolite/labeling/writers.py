"""Writers: one chunk + its result columns → one part file; finished parts → the single output file.

Cell conventions, the same for both engines:

* CSV/TSV: ``None`` → empty cell, lists/dicts (``entities``, nested JSONL values) → JSON text; undecodable bytes
  of the input are written back unchanged (``surrogateescape``).
* JSONL: values keep their JSON type (``entities`` is an array); undecodable bytes become U+FFFD (JSON is UTF-8).
* Parquet: the input schema is kept (Parquet in → Parquet out); ``entities`` is a JSON string column.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kolite.errors import KoliteError
from kolite.labeling.formats import DIALECTS, Chunk, require_pyarrow
from kolite.labeling.texts import replace_surrogates

__all__ = ["atomic_path", "concat_parts", "render_part", "write_part"]


def atomic_path(path: Path) -> Path:
    """A temporary name beside ``path`` (same filesystem, so ``os.replace`` is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


_RAW_ESCAPES = str.maketrans({"\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _raw_cell(value: Any) -> Any:
    # tsv-raw cannot quote: a tab or newline (only possible in cells from other formats) is written as \t, \n.
    value = _cell(value)
    return value.translate(_RAW_ESCAPES) if isinstance(value, str) else value


def _merged_rows(chunk: Chunk, results: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(results)
    columns = [results[name] for name in names]
    rows_of_results = zip(*columns, strict=True)
    return [
        {**row, **dict(zip(names, values, strict=True))}
        for row, values in zip(chunk.rows, rows_of_results, strict=True)
    ]


def _render_csv(chunk: Chunk, results: dict[str, list[Any]], fmt: str) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, **DIALECTS[fmt], lineterminator="\n")
    columns = [*chunk.columns, *results]
    writer.writerow(columns)
    cell = _raw_cell if fmt == "tsv-raw" else _cell
    for row in _merged_rows(chunk, results):
        writer.writerow([cell(row.get(name)) for name in columns])
    return buffer.getvalue().encode("utf-8", errors="surrogateescape")


def _json_line(row: dict[str, Any]) -> str:
    line = json.dumps(row, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = replace_surrogates(line)
    return line + "\n"


def _render_jsonl(chunk: Chunk, results: dict[str, list[Any]]) -> bytes:
    return "".join(_json_line(row) for row in _merged_rows(chunk, results)).encode("utf-8")


def _plain_rows(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    # Fallback when a column mixes types (JSONL) or holds undecodable text: every value becomes a UTF-8 string.
    def plain(value: Any) -> str | None:
        if value is None:
            return None
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return replace_surrogates(text)

    return [{name: plain(row.get(name)) for name in columns} for row in rows]


def _arrow_table(chunk: Chunk, results: dict[str, list[Any]]) -> Any:
    pa = require_pyarrow()
    try:
        if chunk.arrow_schema is not None:
            table = pa.Table.from_pylist(chunk.rows, schema=chunk.arrow_schema)
        else:
            table = pa.Table.from_pylist([{c: r.get(c) for c in chunk.columns} for r in chunk.rows])
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
        table = pa.Table.from_pylist(_plain_rows(chunk.rows, chunk.columns))
    if not chunk.columns:
        table = pa.table({"_": pa.nulls(len(chunk.rows))}).drop_columns(["_"])
    for name, values in results.items():
        if name.endswith("score"):
            table = table.append_column(name, pa.array(values, type=pa.float64()))
        else:
            table = table.append_column(name, pa.array([_cell(v) for v in values], type=pa.string()))
    return table


def _render_parquet(chunk: Chunk, results: dict[str, list[Any]]) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(_arrow_table(chunk, results), buffer, compression="zstd")
    return buffer.getvalue()


def render_part(chunk: Chunk, results: dict[str, list[Any]], fmt: str) -> bytes:
    """The bytes of one part file (header/schema included, so every part is a readable file on its own)."""
    if fmt == "jsonl":
        return _render_jsonl(chunk, results)
    if fmt == "parquet":
        return _render_parquet(chunk, results)
    return _render_csv(chunk, results, fmt)


def write_part(path: Path, data: bytes) -> None:
    """Write-then-rename: a part file exists complete or not at all, even after kill -9."""
    tmp = atomic_path(path)
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _concat_csv(parts: Sequence[Path], out, fmt: str) -> None:
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
        line = header.decode("utf-8", errors="surrogateescape")
        columns.update(dict.fromkeys(next(csv.reader([line], **DIALECTS[fmt]), [])))
    text = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape", newline="")
    writer = csv.DictWriter(text, list(columns), **DIALECTS[fmt], lineterminator="\n")
    writer.writeheader()
    for part in parts:
        with open(part, encoding="utf-8", errors="surrogateescape", newline="") as handle:
            writer.writerows(csv.DictReader(handle, **DIALECTS[fmt]))
    text.flush()
    text.detach()


def _concat_parquet(parts: Sequence[Path], out_path: Path) -> None:
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(part) for part in parts]
    try:
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise KoliteError(f"the parts have incompatible column types and cannot form one Parquet file: {exc}") from exc
    with pq.ParquetWriter(out_path, schema, compression="zstd") as writer:
        for part in parts:
            table = pq.read_table(part)
            for name in schema.names:
                if name not in table.column_names:
                    table = table.append_column(name, pa.nulls(table.num_rows, schema.field(name).type))
            writer.write_table(table.select(schema.names).cast(schema))


def concat_parts(parts: Sequence[Path], output: Path, fmt: str) -> None:
    """Join the parts, in order, into ``output`` — atomically, so a crash here leaves no half-written output."""
    tmp = atomic_path(output)
    if fmt == "parquet":
        _concat_parquet(parts, tmp)
    else:
        with open(tmp, "wb") as out:
            if fmt == "jsonl":
                for part in parts:
                    with open(part, "rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 20)
            else:
                _concat_csv(parts, out, fmt)
    os.replace(tmp, output)
