"""kolite label and kolite predict --input on hostile files: JSON bombs, header-only CSV, values Arrow rejects."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from kolite.cli import main
from kolite.labeling import LabelJob, label_file
from test_label import make_texts

DEEP = "[" * 100_000 + "]" * 100_000


def bomb_lines(valid: list[str]) -> tuple[list[str], dict[int, str]]:
    """``valid`` records with JSON bombs between them; returns the lines and {line index: expected error start}."""
    lines = [json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in enumerate(valid)]
    bombs = {
        3: (DEEP, "invalid JSON: nested too deeply"),
        7: ('{"id": "deep-in-object", "text": "좋다", "meta": ' + DEEP + "}", "invalid JSON: nested too deeply"),
        11: ('{"text": "좋다", "n": 1' + "1" * 5000 + "}", "invalid JSON: number too long"),
        15: ('{"text": "좋다", "text": "싫다"}', "invalid JSON: duplicate key 'text'"),
        19: ('{"text": "좋다", "m": ' + "[" * 150 + "]" * 150 + "}", "invalid JSON: nested too deeply"),
    }
    expected = {}
    for offset, (index, (line, error)) in enumerate(sorted(bombs.items())):
        lines.insert(index + offset, line)
        expected[index + offset] = error
    return lines, expected


def test_json_bombs_get_an_error_record_and_no_valid_line_is_lost_label(tiny_artifact, tmp_path):
    valid = make_texts(26, seed=21)
    lines, expected = bomb_lines(valid)
    lines.append('{"id": "nan", "text": "좋다", "x": NaN, "y": 1e999999}')  # Python's json reads these
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = label_file(
        LabelJob(source, out, str(tiny_artifact("000")), text_column="text", part_rows=8, workers=1, progress=False)
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(lines)
    for index, error in expected.items():
        assert rows[index]["error"].startswith(error), rows[index]["error"]
        assert rows[index]["raw_line"] == lines[index]  # nothing is dropped: the line is kept whole
        assert rows[index]["label"] is None
    good = [r for i, r in enumerate(rows) if i not in expected]
    assert [r["text"] for r in good[:-1]] == valid and all(r["error"] is None for r in good)
    assert good[-1]["x"] != good[-1]["x"] and good[-1]["y"] == float("inf")  # NaN / Infinity written back
    assert (summary.rows, summary.labelled) == (len(lines), 27)


@pytest.mark.parametrize("out_name", ["out.parquet", "out.csv"])
def test_jsonl_values_arrow_or_csv_reject_do_not_stop_the_job(tiny_artifact, tmp_path, out_name):
    pytest.importorskip("pyarrow")
    lines = [
        json.dumps({"text": "좋은 영화", "n": 2**70}),  # no Arrow integer type holds it
        json.dumps({"text": "별로", "n": 1}),
        '{"text": "\\ud800 lone surrogate", "n": 2}',  # a lone surrogate cannot be written as UTF-8
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / out_name
    # One row per part: the big integer's part alone, so each part infers its own column types.
    job = LabelJob(source, out, str(tiny_artifact("000")), text_column="text", part_rows=1, workers=1, progress=False)
    summary = label_file(job)
    assert (summary.rows, summary.labelled) == (3, 2)
    if out_name.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        assert table.column("n").to_pylist() == [str(2**70), "1", "2"]  # mixed column: kept as text
        assert table.column("text").to_pylist()[2] == "\ufffd lone surrogate"
    else:
        with out.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["n"] for r in rows] == [str(2**70), "1", "2"]
        assert rows[2]["text"] == "\ufffd lone surrogate" and rows[2]["error"].startswith("undecodable")


def test_header_only_csv_keeps_the_input_columns(tiny_artifact, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,document,note\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    summary = label_file(LabelJob(source, out, str(tiny_artifact("000")), workers=1, progress=False))
    assert out.read_text(encoding="utf-8") == "id,document,note,label,score,error\n"
    assert summary.rows == 0


def test_header_only_tsv_to_jsonl_and_parquet(tiny_artifact, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    source = tmp_path / "in.tsv"
    source.write_text("id\tdocument\n", encoding="utf-8")
    label_file(LabelJob(source, tmp_path / "o.parquet", str(tiny_artifact("000")), workers=1, progress=False))
    assert pq.read_schema(tmp_path / "o.parquet").names == ["id", "document", "label", "score", "error"]
    label_file(LabelJob(source, tmp_path / "o.jsonl", str(tiny_artifact("000")), workers=1, progress=False))
    assert (tmp_path / "o.jsonl").read_bytes() == b""


def test_predict_json_bombs_keep_every_valid_line(tiny_artifact, tmp_path):
    valid = make_texts(26, seed=22)
    lines, expected = bomb_lines(valid)
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(tiny_artifact("000")), "--input", str(source), "--output", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == list(range(1, len(lines) + 1))
    for index, error in expected.items():
        assert records[index]["error"].startswith(error), records[index]["error"]
    good = [r for i, r in enumerate(records) if i not in expected]
    assert [r["text"] for r in good] == valid and all("predictions" in r for r in good)


def test_predict_a_huge_line_is_one_record(tiny_artifact, tmp_path):
    text = "영화 최고 " * 500_000  # 7.5 MB of UTF-8 in one line, next to a normal one
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": text}, ensure_ascii=False) + '\n{"text": "별로"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(tiny_artifact("000")), "-i", str(source), "-o", str(out)]) == 0
    records = [json.loads(line) for line in Path(out).read_text(encoding="utf-8").splitlines()]
    assert [len(r["predictions"]) for r in records] == [1, 1] and records[0]["text"] == text
