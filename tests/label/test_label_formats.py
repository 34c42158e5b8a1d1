"""One object per labeller file format (issue 22, item 4): a new format is one FileFormat subclass and one
``register`` call; nothing else in the labeller changes. A throwaway pipe-separated format proves it end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kolite.cli import main
from kolite.labeling import LabelJob, formats, label_file
from kolite.labeling.formats import Chunk, FileFormat, chunked, get_format, open_text, register


class PipeFormat(FileFormat):
    """``a|b`` lines with a header line; no quoting (a throwaway format for this test)."""

    name = "pipe"
    extensions = (".pipe",)
    part_suffix = "pipe"
    header_rows = 1

    def columns(self, path: Path, encoding: str) -> list[str]:
        with open_text(path, encoding) as handle:
            return handle.readline().rstrip("\n").split("|")

    def chunks(self, path: Path, chunk_rows: int, encoding: str) -> Iterator[Chunk]:
        return chunked(self._rows(path, encoding), chunk_rows, self.columns(path, encoding))

    def _rows(self, path: Path, encoding: str) -> Iterator[tuple[dict[str, Any], str | None]]:
        with open_text(path, encoding) as handle:
            header = handle.readline().rstrip("\n").split("|")
            for line in handle:
                fields = line.rstrip("\n").split("|")
                error = None if len(fields) == len(header) else f"row has {len(fields)} fields"
                yield dict(zip(header, fields + [""] * (len(header) - len(fields)), strict=False)), error

    def render(self, chunk: Chunk, results: dict[str, list[Any]]) -> bytes:
        names = [*chunk.columns, *results]
        lines = ["|".join(names)]
        for i, row in enumerate(chunk.rows):
            values = [row.get(name) for name in chunk.columns] + [results[name][i] for name in results]
            lines.append("|".join("" if v is None else str(v) for v in values))
        return ("\n".join(lines) + "\n").encode("utf-8")

    def concat(self, parts: list[Path], out: Path) -> None:
        lines: list[str] = []
        for number, part in enumerate(parts):
            part_lines = part.read_text(encoding="utf-8").splitlines(keepends=True)
            lines.extend(part_lines if number == 0 else part_lines[1:])
        out.write_text("".join(lines), encoding="utf-8")


@pytest.fixture
def pipe(monkeypatch):
    monkeypatch.setattr(formats, "_REGISTRY", dict(formats._registry()))  # forgotten after the test
    return register(PipeFormat())


ROWS = ["영화 정말 재밌어요", "시간 낭비였다", "", "배우들 연기가 최고"] * 5


def test_a_registered_format_labels_a_file_end_to_end(pipe, tiny_artifact, tmp_path):
    source = tmp_path / "reviews.pipe"
    source.write_text("id|document\n" + "".join(f"{i}|{t}\n" for i, t in enumerate(ROWS)) + "99|a|b\n", "utf-8")
    out = tmp_path / "labelled.pipe"
    summary = label_file(LabelJob(source, out, str(tiny_artifact("000")), part_rows=7, workers=1, progress=False))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id|document|label|score|error"
    rows = [line.split("|") for line in lines[1:]]
    assert [r[1] for r in rows] == [*ROWS, "a"] and [r[0] for r in rows] == [*map(str, range(len(ROWS))), "99"]
    assert all(r[2] for r, text in zip(rows, ROWS, strict=False) if text)  # labelled
    assert rows[-1][4] == "row has 3 fields" and rows[2][4] == "empty text"
    assert (summary.rows, pipe.count_rows(source)) == (len(ROWS) + 1, len(ROWS) + 1)


def test_the_cli_knows_a_registered_format_by_name_and_extension(pipe, tiny_artifact, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("id|document\n1|영화 최고\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    args = ["label", str(source), "--model", str(tiny_artifact("000")), "--out", str(out), "--no-progress"]
    assert main([*args, "--input-format", "pipe"]) == 0
    assert out.read_text(encoding="utf-8").splitlines()[0] == "id,document,label,score,error"
    assert get_format("pipe") is pipe and formats.detect_format("x.pipe.gz") == "pipe"


def test_every_builtin_format_is_one_registered_object():
    assert formats.format_names() == ("csv", "tsv", "tsv-raw", "jsonl", "parquet")
    assert formats.detect_format("a.tsv.bz2") == "tsv" and formats.same_family("tsv-raw", "tsv")
    assert not get_format("parquet").decoded and get_format("tsv-raw").part_suffix == "tsv"
    with pytest.raises(formats.KoliteError, match="unknown format 'xlsx'"):
        get_format("xlsx")
