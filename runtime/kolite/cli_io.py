"""Line-oriented input/output for ``kolite predict``: bytes in, one JSON object per line out, errors per line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kolite.errors import KoliteError
from kolite.input_decoding import (
    AUTO,
    ESCAPE,
    EncodingChoice,
    JsonLineError,
    choose_encoding,
    escaped_bytes,
    iter_lines,
    loads_json_line,
    prefixed,
)
from kolite.tokenization import replace_lone_surrogates

__all__ = ["FORMATS", "Item", "JsonlWriter", "decode_input", "open_input", "read_items"]

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


def decode_input(stream: IO[bytes], encoding: str = AUTO) -> tuple[EncodingChoice, IO[bytes]]:
    """The encoding of ``stream`` (``auto``: BOM, UTF-8, else detected) and the stream, rewound to its start."""
    choice, head = choose_encoding(stream, encoding)
    return choice, prefixed(head, stream) if head else stream


def read_items(stream: IO[bytes], fmt: str = "auto", choice: EncodingChoice | None = None) -> Iterator[Item]:
    """Decode each line on its own, so one bad line (undecodable bytes, bad JSON, no text) costs only itself.

    Blank lines are skipped. ``auto`` picks jsonl when the first non-blank line starts with ``{``. ``choice``: the
    stream's encoding (default UTF-8); a line with bytes it cannot decode gets an error naming the first of them.
    """
    choice = choice or EncodingChoice("utf-8", "given")
    for number, line in enumerate(iter_lines(stream, choice), start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        bad = escaped_bytes(line)
        if bad is not None:
            yield Item(number, error=f"invalid {choice.name} at {_where(line, bad[0], choice)}: {bad[1][:4]!r}")
            continue
        if fmt == "auto":
            fmt = "jsonl" if line.lstrip().startswith("{") else "lines"
        yield _parse_json(number, line) if fmt == "jsonl" else Item(number, text=line)


def _where(line: str, position: int, choice: EncodingChoice) -> str:
    if not choice.ascii_compatible:  # UTF-16/32: a byte offset would count the BOM the codec adds
        return f"character {position}"
    return f"byte {len(line[:position].encode(choice.encoding, errors=ESCAPE))}"


def _parse_json(number: int, line: str) -> Item:
    try:
        record = loads_json_line(line)
    except JsonLineError as exc:
        return Item(number, error=str(exc))
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
