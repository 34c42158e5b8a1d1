"""Parquet: read by record batches (pyarrow); its strings are UTF-8 whatever ``--encoding`` says. The input schema
is kept (Parquet in → Parquet out); ``entities`` is a JSON string column. A column whose values Arrow cannot type
(mixed JSONL types, integers beyond 64 bits) is written as text."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kolite.errors import CorruptInputError
from kolite.input_decoding import EncodingChoice
from kolite.labeling.formats import Chunk, FileFormat, register, require_pyarrow
from kolite.labeling.texts import replace_surrogates
from kolite.labeling.writers import cell_value

__all__ = ["ParquetFormat", "open_parquet"]


def _corrupt(path: Path, exc: Exception) -> str:
    return f"{path.name} is corrupt or truncated ({type(exc).__name__}: {exc})"


def open_parquet(path: Path) -> Any:
    """A ``pyarrow.parquet.ParquetFile``; a file that is not (or no longer) Parquet is a :class:`CorruptInputError`."""
    pyarrow = require_pyarrow()
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (OSError, pyarrow.ArrowException) as exc:
        raise CorruptInputError(_corrupt(path, exc)) from None


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
            table = table.append_column(name, pa.array([cell_value(v) for v in values], type=pa.string()))
    return table


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


class ParquetFormat(FileFormat):
    name = "parquet"
    extensions = (".parquet", ".pq")
    part_suffix = "parquet"
    decoded = False

    def columns(self, path: Path, encoding: str) -> list[str]:
        with open_parquet(path) as parquet:
            return list(parquet.schema_arrow.names)

    def count_rows(self, path: Path, encoding: EncodingChoice | None = None) -> int | None:
        try:
            with open_parquet(path) as parquet:
                return int(parquet.metadata.num_rows)
        except CorruptInputError:
            return None  # the reader reports it, after the rows it can read

    def chunks(self, path: Path, chunk_rows: int, encoding: str) -> Iterator[Chunk]:
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

    def render(self, chunk: Chunk, results: dict[str, list[Any]]) -> bytes:
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(_arrow_table(chunk, results), buffer, compression="zstd")
        return buffer.getvalue()

    def concat(self, parts: Sequence[Path], out: Path) -> None:
        import pyarrow.parquet as pq

        schema = _joint_schema([pq.read_schema(part) for part in parts])
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            for part in parts:
                writer.write_table(_conform(pq.read_table(part), schema))


register(ParquetFormat())
