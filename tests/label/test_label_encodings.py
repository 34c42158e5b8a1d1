"""Korean files in the encodings Excel and public-data portals write: every one labels like UTF-8.

The same 20 rows (Korean header included) written as UTF-8, UTF-8 with BOM, CP949, EUC-KR and UTF-16 LE/BE with
BOM must give byte-identical outputs (always UTF-8); the detected encoding is named on stderr; a wrong explicit
``--encoding`` costs rows, never the job.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path

import pytest
from kolite.cli import main

ROWS = [
    "영화 정말 재밌어요",
    "배우들 연기가 최고, 강추합니다",
    "시간 낭비였다...",
    '"인생 영화" 다시 보고 싶은 명작',
    "지루해서 잠들었음",
    "ㅋㅋㅋ 웃겨요",
    "감동적인 결말에 눈물이 났다",
    "스토리가 엉망이고 개연성 없음",
    "OST가 좋아요 2점 드림",
    "별로예요",
    "가족과 함께 보기 좋은 영화",
    "처음엔 별로였는데 갈수록 몰입됨",
    "연출, 각본, 연기 모두 훌륭",
    "돈 아깝다",
    "기대 이하",
    "10점 만점에 10점!",
    "주인공이 너무 답답함",
    "음악이 장면과 잘 어울림",
    "한국 영화의 자존심",
    "그냥 그랬어요",
]
HEADER = ["번호", "리뷰", "비고"]
# name -> how the text of a file is turned into bytes (the UTF-16 files start with their BOM, as Excel writes them)
ENCODINGS = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8-bom": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "cp949": lambda text: text.encode("cp949"),
    "euc-kr": lambda text: text.encode("euc-kr"),
    "utf-16-le-bom": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be-bom": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
}


def table_text(fmt: str, rows: list[str] = ROWS) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter="," if fmt == "csv" else "\t", lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows([i, text, "비고 없음" if i % 3 else ""] for i, text in enumerate(rows))
    return buffer.getvalue()


def label(artifact: Path, source: Path, out: Path, *extra: str) -> int:
    args = ["label", str(source), "--model", str(artifact), "--out", str(out), "--text-column", "리뷰"]
    return main([*args, "--workers", "1", "--no-progress", *extra])


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_every_korean_encoding_labels_identically(tiny_artifact, tmp_path, capsys, fmt):
    artifact = tiny_artifact("000")
    outputs = {}
    for name, encode in ENCODINGS.items():
        source = tmp_path / f"{name}.{fmt}"
        source.write_bytes(encode(table_text(fmt)))
        out = tmp_path / f"out-{name}.{fmt}"
        assert label(artifact, source, out) == 0, capsys.readouterr().err
        err = capsys.readouterr().err
        assert "encoding" in err and "Traceback" not in err
        outputs[name] = out.read_bytes()
        if name in ("cp949", "euc-kr"):
            assert "CP949 encoding (detected" in err  # a superset of EUC-KR: what Korean legacy files are read as
    reference = outputs.pop("utf-8")
    assert all(data == reference for data in outputs.values()), [n for n, d in outputs.items() if d != reference]
    rows = list(csv.DictReader(io.StringIO(reference.decode("utf-8")), delimiter="," if fmt == "csv" else "\t"))
    assert [r["리뷰"] for r in rows] == ROWS
    assert all(r["label"] and r["error"] == "" for r in rows)


def test_cp949_only_syllables_and_an_explicit_encoding(tiny_artifact, tmp_path, capsys):
    # 똠, 뷁, 햏 are not in EUC-KR (KS X 1001) but are in CP949 (Windows' Korean code page).
    rows = ["똠방각하 최고", "뷁 별로", "햏자 재밌다"]
    source = tmp_path / "in.csv"
    source.write_bytes(table_text("csv", rows).encode("cp949"))
    assert label(tiny_artifact("000"), source, tmp_path / "auto.csv") == 0
    assert "CP949 encoding" in capsys.readouterr().err
    assert label(tiny_artifact("000"), source, tmp_path / "explicit.csv", "--encoding", "euc-kr") == 0
    capsys.readouterr()
    with (tmp_path / "auto.csv").open(encoding="utf-8", newline="") as handle:
        assert [r["리뷰"] for r in csv.DictReader(handle)] == rows
    # EUC-KR named explicitly: the CP949-only syllables are undecodable in it, flagged row by row.
    with (tmp_path / "explicit.csv").open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        errors = [r["error"] for r in csv.DictReader(handle)]
    assert errors == ["undecodable text (not EUC-KR)"] * 3


def test_wrong_explicit_encoding_costs_rows_not_the_job(tiny_artifact, tmp_path, capsys):
    artifact = tiny_artifact("000")
    source = tmp_path / "in.tsv"
    text = "id\tdocument\n" + "".join(f"{i}\t{row}\n" for i, row in enumerate(ROWS))
    source.write_bytes(text.encode("cp949"))
    out = tmp_path / "out.tsv"
    assert label(artifact, source, out, "--text-column", "document", "--encoding", "utf-8") == 0
    assert "Traceback" not in capsys.readouterr().err
    raw = out.read_bytes()
    assert ROWS[0].encode("cp949") in raw  # undecodable cells keep their original bytes
    rows = raw.decode("utf-8", errors="surrogateescape").splitlines()[1:]
    assert [row.split("\t")[-1] for row in rows] == ["undecodable text (not UTF-8)"] * 20

    # A header that does not decode to the named column, or an unknown codec: one line, exit 2.
    assert label(artifact, source, tmp_path / "o2.tsv", "--text-column", "document", "--encoding", "utf-16") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "not found" in err[-1] and [line.startswith("kolite label: error:") for line in err] == [False, True]
    assert "little-endian" in err[0]  # UTF-16 named without a BOM in the file: said how it is read
    assert label(artifact, source, tmp_path / "o3.tsv", "--text-column", "document", "--encoding", "klingon") == 2
    err = capsys.readouterr().err
    assert "unknown encoding 'klingon'" in err and len(err.strip().splitlines()) == 1


def test_jsonl_with_a_utf8_bom(tiny_artifact, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    body = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in ROWS)
    source.write_bytes(codecs.BOM_UTF8 + body.encode("utf-8"))
    out = tmp_path / "out.jsonl"
    assert label(tiny_artifact("000"), source, out, "--text-column", "text") == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == ROWS and all(r["error"] is None for r in rows)


@pytest.mark.parametrize("name", ["utf-8-bom", "cp949", "euc-kr", "utf-16-le-bom", "utf-16-be-bom"])
def test_predict_input_detects_the_encoding(tiny_artifact, tmp_path, capsys, name):
    artifact = str(tiny_artifact("000"))
    lines = tmp_path / "lines.txt"
    lines.write_bytes(ENCODINGS[name]("\n".join(ROWS) + "\n"))
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_bytes(ENCODINGS[name]("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in ROWS)))
    reference = tmp_path / "reference.txt"
    reference.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    outputs = []
    for source in (reference, lines, jsonl):
        out = tmp_path / f"out-{source.stem}.jsonl"
        assert main(["predict", artifact, "--input", str(source), "--output", str(out)]) == 0
        outputs.append([(r["text"], r["predictions"]) for r in map(json.loads, out.read_text("utf-8").splitlines())])
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]
    assert [text for text, _ in outputs[0]] == ROWS
    err = capsys.readouterr().err
    assert "encoding" in err and "Traceback" not in err


def test_predict_wrong_explicit_encoding_gives_per_line_errors(tiny_artifact, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_bytes(("영화 최고\nplain ascii\n" + "별로\n").encode("cp949"))
    out = tmp_path / "out.jsonl"
    code = main(["predict", str(tiny_artifact("000")), "-i", str(source), "-o", str(out), "--encoding", "utf-8"])
    assert code == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert ["error" in r for r in records] == [True, False, True]
    assert records[0]["error"].startswith("invalid UTF-8 at byte 0")
    assert main(["predict", str(tiny_artifact("000")), "-i", str(source), "--encoding", "nope"]) == 2
    assert "unknown encoding 'nope'" in capsys.readouterr().err
