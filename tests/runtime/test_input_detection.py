"""``--encoding auto`` never garbles: it reads UTF-8 (bad lines as per-row errors), a BOM's codec, or Korean CP949,
and refuses with a clear error what it cannot check (issue 21, item 1)."""

from __future__ import annotations

import codecs
import csv
import io
import json

import pytest
from kolite import input_decoding
from kolite.cli import main
from kolite.errors import KoliteError
from kolite.input_decoding import CP949, ESCAPE, choose_encoding

# KS X 1001 composition sequence: HANGUL FILLER + ㄱ + ㅏ + ㄴ, EUC-KR's spelling of 간 (any syllable, in fact).
COMPOSED_GAN = b"\xa4\xd4\xa4\xa1\xa4\xbf\xa4\xa4"


def choose(data: bytes) -> input_decoding.EncodingChoice:
    return choose_encoding(io.BytesIO(data))[0]


def test_utf8_with_one_corrupt_line_stays_utf8():
    data = b"id,text\n1,\xea\xb0\x80\n2,\xb0\xa1\xff corrupt\n"  # "가" in UTF-8, then CP949/garbage bytes
    choice = choose(data)
    assert choice.encoding == "utf-8" and "those rows get an error" in choice.how
    lines = data.decode("utf-8", errors=ESCAPE).splitlines()
    assert lines[1] == "1,가"  # never re-decoded as CP1252 ("ê°€")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ("café naïve\nrésumé\n".encode("latin-1"), "cannot tell the input's encoding"),
        ("영화 최고\n".encode("utf-16-le"), "without a byte order mark"),
        ("영화 최고\n".encode("utf-32-be"), "without a byte order mark"),
        (bytes(range(128, 256)) * 4, "pass --encoding"),
    ],
)
def test_what_cannot_be_checked_is_refused_clearly(data, needle):
    with pytest.raises(KoliteError, match=needle):
        choose(data)


def test_cp949_is_guessed_only_when_every_line_decodes_as_korean():
    assert choose("영화 최고\n똠방각하\n".encode("cp949")).encoding == CP949
    with pytest.raises(KoliteError, match="pass --encoding"):  # one line that is not CP949 at all
        choose("영화 최고\n".encode("cp949") + b"\xff\xff\xff\n")


def test_euc_kr_composition_sequences_read_the_same_under_auto_and_named_codecs():
    data = "영화 ".encode("euc-kr") + COMPOSED_GAN + " 최고\n".encode("euc-kr")
    expected = data.decode("euc_kr")
    assert "간" in expected
    for requested in ("auto", "euc-kr", "cp949", "uhc"):
        choice = choose_encoding(io.BytesIO(data), requested)[0]
        assert io.TextIOWrapper(io.BytesIO(data), encoding=choice.encoding, errors=ESCAPE).read() == expected
    # Streamed in tiny chunks (a sequence cut between two reads) the syllable is still composed.
    decoder = codecs.getincrementaldecoder(CP949)(ESCAPE)
    streamed = "".join(decoder.decode(data[i : i + 3]) for i in range(0, len(data), 3)) + decoder.decode(b"", True)
    assert streamed == expected


def test_a_later_decode_failure_is_a_row_error(monkeypatch, tiny_artifact, tmp_path):
    # The sample (shrunk here) is all CP949; a corrupt row after it is that row's error, never a traceback.
    monkeypatch.setattr(input_decoding, "NON_ASCII_WANTED", 64)
    monkeypatch.setattr(input_decoding, "SAMPLE_LIMIT", 256)
    rows = ["영화 정말 재밌어요"] * 30
    source = tmp_path / "in.csv"
    body = "document\n" + "".join(f"{row}\n" for row in rows)
    source.write_bytes(body.encode("cp949") + b"\xff\xfe\xfd\n" + "끝\n".encode("cp949"))
    out = tmp_path / "out.csv"
    args = ["label", str(source), "--model", str(tiny_artifact("000")), "--out", str(out)]
    assert main([*args, "--workers", "1", "--no-progress"]) == 0
    with out.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert [r["document"] for r in records[:30]] == rows and records[-1]["document"] == "끝"
    assert [bool(r["error"]) for r in records] == [False] * 30 + [True, False]


def test_label_and_predict_keep_the_valid_utf8_row(tiny_artifact, tmp_path, capsys):
    artifact = str(tiny_artifact("000"))
    source = tmp_path / "in.csv"
    source.write_bytes(b"document\n\xea\xb0\x80\n\xb0\xa1\xff\n")
    out = tmp_path / "out.csv"
    assert main(["label", str(source), "--model", artifact, "--out", str(out), "--no-progress"]) == 0
    with out.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert records[0]["document"] == "가" and not records[0]["error"] and records[1]["error"]

    lines = tmp_path / "in.txt"
    lines.write_bytes(b"\xea\xb0\x80\n\xb0\xa1\xff\n")
    predicted = tmp_path / "out.jsonl"
    assert main(["predict", artifact, "--input", str(lines), "--output", str(predicted)]) == 0
    records = [json.loads(line) for line in predicted.read_text(encoding="utf-8").splitlines()]
    assert records[0]["text"] == "가" and records[1]["error"].startswith("invalid UTF-8")
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["label", "predict"])
def test_bomless_utf16_is_a_clear_usage_error(tiny_artifact, tmp_path, capsys, command):
    source = tmp_path / "in.txt"
    source.write_bytes("document\n영화 최고\n".encode("utf-16-le"))
    artifact = str(tiny_artifact("000"))
    if command == "label":
        args = ["label", str(source), "--model", artifact, "--out", str(tmp_path / "o.tsv"), "--no-progress"]
    else:
        args = ["predict", artifact, "--input", str(source)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--encoding utf-16-le" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.tsv").exists()
