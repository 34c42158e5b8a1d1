"""JSON Lines: one JSON object per line, read line by line. A line that is not usable JSON or not an object is
kept whole (in ``raw_line``) with a read error, never dropped. On output values keep their JSON type (``entities``
is an array); undecodable bytes become U+FFFD (JSON is UTF-8)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kolite.input_decoding import JsonLineError, loads_json_line
from kolite.labeling.formats import Chunk, FileFormat, chunked, open_text, register
from kolite.labeling.texts import replace_surrogates
from kolite.labeling.writers import merged_rows

__all__ = ["RAW_LINE_COLUMN", "JsonLinesFormat", "parse_jsonl_line"]

RAW_LINE_COLUMN = "raw_line"  # where a JSONL line that is not a JSON object is kept (nothing is dropped)


def parse_jsonl_line(line: str) -> tuple[dict[str, Any], str | None]:
    """One JSON Lines record → (row, read error). A line that is not a JSON object is kept whole, not dropped."""
    try:
        value = loads_json_line(line)
    except JsonLineError as exc:
        return {RAW_LINE_COLUMN: line}, str(exc)
    if not isinstance(value, dict):
        return {RAW_LINE_COLUMN: line}, f"not a JSON object ({type(value).__name__})"
    return value, None


def _json_line(row: dict[str, Any]) -> str:
    line = json.dumps(row, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = replace_surrogates(line)
    return line + "\n"


class JsonLinesFormat(FileFormat):
    name = "jsonl"
    extensions = (".jsonl", ".ndjson")
    part_suffix = "jsonl"

    def chunks(self, path: Path, chunk_rows: int, encoding: str) -> Iterator[Chunk]:
        return chunked(self._rows(path, encoding), chunk_rows, [])

    def _rows(self, path: Path, encoding: str) -> Iterator[tuple[dict[str, Any], str | None]]:
        # Lines end at \n only: a lone \r is JSON whitespace, not a record separator.
        with open_text(path, encoding, newline="\n") as handle:
            for line in handle:
                stripped = line.rstrip("\r\n")
                if stripped.strip():  # blank lines are not records in JSON Lines
                    yield parse_jsonl_line(stripped)

    def render(self, chunk: Chunk, results: dict[str, list[Any]]) -> bytes:
        return "".join(_json_line(row) for row in merged_rows(chunk, results)).encode("utf-8")


register(JsonLinesFormat())
