"""Writing parts: one chunk + its result columns → one part file (by the output's format), written atomically;
finished parts → the single output file. The cell conventions of each format live in its module."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kolite.labeling.formats import Chunk

__all__ = ["atomic_path", "cell_value", "concat_parts", "merged_rows", "render_part", "write_part"]


def atomic_path(path: Path) -> Path:
    """A temporary name beside ``path`` (same filesystem, so ``os.replace`` is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def cell_value(value: Any) -> Any:
    """A value for a text cell: lists and dicts (``entities``, nested JSONL values) as JSON text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def merged_rows(chunk: Chunk, results: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Each input row with its result columns added."""
    names = list(results)
    columns = [results[name] for name in names]
    rows_of_results = zip(*columns, strict=True)
    return [
        {**row, **dict(zip(names, values, strict=True))}
        for row, values in zip(chunk.rows, rows_of_results, strict=True)
    ]


def render_part(chunk: Chunk, results: dict[str, list[Any]], fmt: str) -> bytes:
    """The bytes of one part file in format ``fmt`` (header/schema included: every part is a readable file)."""
    from kolite.labeling.formats import get_format

    return get_format(fmt).render(chunk, results)


def write_part(path: Path, data: bytes) -> None:
    """Write-then-rename: a part file exists complete or not at all, even after kill -9."""
    tmp = atomic_path(path)
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def concat_parts(parts: Sequence[Path], output: Path, fmt: str, tmp: Path | None = None) -> None:
    """Join the parts, in order, into ``output`` — atomically, so a crash here leaves no half-written output.

    ``tmp`` (same filesystem as ``output``) is where the join is written first; a job puts it in its parts folder
    so that a join killed half-way leaves nothing beside the output."""
    from kolite.labeling.formats import get_format

    tmp = tmp or atomic_path(output)
    get_format(fmt).concat(parts, tmp)
    os.replace(tmp, output)
