"""Line-oriented input/output for ``kolite predict``: bytes in, one JSON object per line out, errors per line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kolite.errors import KoliteError
from kolite.tokenization import replace_lone_surrogates

__all__ = ["FORMATS", "Item", "JsonlWriter", "open_input", "read_items"]

FORMATS = ("auto", "jsonl", "lines")


@dataclass(frozen=True)
class Item:
    """One input record: a text to predict, or the reason the line could not be read."""

    line: int
    text: str | None = None
    id: Any = None
    error: str | None = None

    def header(self) -> dict[str, Any]:
        head: dict[str, Any] = {"line": self.line}
        if self.id is not None:
            head["id"] = self.id
        return head


def open_input(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(Path(path), "rb")  # closed by the caller
    except OSError as exc:
        raise KoliteError(f"cannot read --input {path}: {exc.strerror}") from exc


def read_items(stream: Iterable[bytes], fmt: str = "auto") -> Iterator[Item]:
    """Decode each line on its own, so one bad line (invalid UTF-8, bad JSON, no text) costs only itself.

    Blank lines are skipped. ``auto`` picks jsonl when the first non-blank line starts with ``{``.
    """
    for number, raw in enumerate(stream, start=1):
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Item(number, error=f"invalid UTF-8 at byte {exc.start}: {raw[exc.start : exc.start + 4]!r}")
            continue
        if fmt == "auto":
            fmt = "jsonl" if line.lstrip().startswith("{") else "lines"
        yield _parse_json(number, line) if fmt == "jsonl" else Item(number, text=line)


def _parse_json(number: int, line: str) -> Item:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return Item(number, error=f"invalid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(record, dict):
        return Item(number, error=f"expected a JSON object with a 'text' field, got {type(record).__name__}")
    record_id = record.get("id")
    text = record.get("text")
    if not isinstance(text, str):
        problem = "missing 'text' field" if "text" not in record else f"'text' is {type(text).__name__}, not a string"
        return Item(number, id=record_id, error=problem)
    return Item(number, text=text, id=record_id)


class JsonlWriter:
    """Writes UTF-8 JSON lines whatever the locale; lone surrogates become U+FFFD instead of crashing the write."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def write(self, record: dict[str, Any]) -> None:
        text = json.dumps(record, ensure_ascii=False)
        self.stream.write(replace_lone_surrogates(text).encode("utf-8") + b"\n")

    def flush(self) -> None:
        self.stream.flush()
