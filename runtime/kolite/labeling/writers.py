"""Writers: one chunk + its result columns → one part file; finished parts → the single output file.

Cell conventions, the same for both engines:

* CSV/TSV: ``None`` → empty cell, lists/dicts (``entities``, nested JSONL values) → JSON text; undecodable bytes
  of the input are written back unchanged, other lone surrogates (a JSON ``"\\ud800"``) as U+FFFD.
* JSONL: values keep their JSON type (``entities`` is an array); undecodable bytes become U+FFFD (JSON is UTF-8).
* Parquet: the input schema is kept (Parquet in → Parquet out); ``entities`` is a JSON string column. A column
  whose values Arrow cannot type (mixed JSONL types, integers beyond 64 bits) is written as text.
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

from kolite.input_decoding import ESCAPE
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
    return buffer.getvalue().encode("utf-8", errors=ESCAPE)


def _json_line(row: dict[str, Any]) -> str:
    line = json.dumps(row, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = replace_surrogates(line)
    return line + "\n"


def _render_jsonl(chunk: Chunk, results: dict[str, list[Any]]) -> bytes:
    return "".join(_json_line(row) for row in _merged_rows(chunk, results)).encode("utf-8")


def _text(value: Any) -> str:
    """A value as text: strings as they are, anything else as JSON (2**70 → "1180591620717411303424")."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _plain_rows(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    # Fallback when a column mixes types (JSONL) or holds undecodable text: every value becomes a UTF-8 string.
    def plain(value: Any) -> str | None:
        return None if value is None else replace_surrogates(_text(value))

    return [{name: plain(row.get(name)) for name in columns} for row in rows]


def _arrow_table(chunk: Chunk, results: dict[str, list[Any]]) -> Any:
    pa = require_pyarrow()
    try:
        if chunk.arrow_schema is not None:
            table = pa.Table.from_pylist(chunk.rows, schema=chunk.arrow_schema)
        elif not chunk.rows:  # a header-only CSV/TSV: its columns, as the text they would hold
            table = pa.table({name: pa.array([], pa.string()) for name in chunk.columns})
        else:
            table = pa.Table.from_pylist([{c: r.get(c) for c in chunk.columns} for r in chunk.rows])
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError, OverflowError):
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
        line = header.decode("utf-8", errors=ESCAPE)
        columns.update(dict.fromkeys(next(csv.reader([line], **DIALECTS[fmt]), [])))
    text = io.TextIOWrapper(out, encoding="utf-8", errors=ESCAPE, newline="")
    writer = csv.DictWriter(text, list(columns), **DIALECTS[fmt], lineterminator="\n")
    writer.writeheader()
    for part in parts:
        with open(part, encoding="utf-8", errors=ESCAPE, newline="") as handle:
            writer.writerows(csv.DictReader(handle, **DIALECTS[fmt]))
    text.flush()
    text.detach()


def _joint_schema(schemas: list[Any]) -> Any:
    """One schema for all parts; a column whose types cannot be unified (int in one part, text in another: JSONL
    with mixed types) becomes text, so the join never throws away a finished job."""
    pa = require_pyarrow()
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    fields: dict[str, Any] = {}
    for schema in schemas:
        for field in schema:
            known = fields.get(field.name)
            if known is None:
                fields[field.name] = field
            elif known.type != field.type:
                try:
                    fields[field.name] = pa.unify_schemas(
                        [pa.schema([known]), pa.schema([field])], promote_options="permissive"
                    ).field(field.name)
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    fields[field.name] = pa.field(field.name, pa.string())
    return pa.schema(list(fields.values()))


def _conform(table: Any, schema: Any) -> Any:
    pa = require_pyarrow()
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if column.type != field.type and field.type == pa.string() and not pa.types.is_string(column.type):
            column = pa.array([None if v is None else _text(v) for v in column.to_pylist()], pa.string())
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _concat_parquet(parts: Sequence[Path], out_path: Path) -> None:
    import pyarrow.parquet as pq

    schema = _joint_schema([pq.read_schema(part) for part in parts])
    with pq.ParquetWriter(out_path, schema, compression="zstd") as writer:
        for part in parts:
            writer.write_table(_conform(pq.read_table(part), schema))


def concat_parts(parts: Sequence[Path], output: Path, fmt: str, tmp: Path | None = None) -> None:
    """Join the parts, in order, into ``output`` — atomically, so a crash here leaves no half-written output.

    ``tmp`` (same filesystem as ``output``) is where the join is written first; a job puts it in its parts folder
    so that a join killed half-way leaves nothing beside the output."""
    tmp = tmp or atomic_path(output)
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
