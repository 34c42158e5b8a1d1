"""`kolite predict` / `kolite info`: jsonl in/out, per-line errors, exit codes, plugin stubs."""

from __future__ import annotations

import json
import subprocess
import sys

import kolite
import pytest
from kolite.cli import main


def assert_same_results(records: list[dict], expected: list[dict]) -> None:
    """Same labels/offsets exactly, same scores to float32 precision."""
    strip = [{k: v for k, v in r.items() if k != "score"} for r in records]
    assert strip == [{k: v for k, v in e.items() if k != "score"} for e in expected]
    assert [r["score"] for r in records] == pytest.approx([e["score"] for e in expected], abs=1e-6)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def bad_input(tmp_path):
    lines = [
        b'{"id": "a", "text": "\xec\x98\x81\xed\x99\x94 \xec\xb5\x9c\xea\xb3\xa0"}',  # "영화 최고"
        b'{"id": "b", "text": "bad \xff\xfe bytes"}',  # invalid UTF-8
        b"not json {",
        b'{"id": "c"}',
        b'{"id": "d", "text": 5}',
        b"",
        b'{"id": "e", "text": "\\ud800 lone surrogate"}',  # valid JSON, lone surrogate in the string
        b'{"text": ""}',
        b"[1, 2]",
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_predict_jsonl_keeps_good_lines_and_reports_bad_ones(tiny_artifact, bad_input, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    code = main(
        [
            "predict",
            str(tiny_artifact("000")),
            "--input",
            str(bad_input),
            "--output",
            str(out),
            "--top-k",
            "all",
            "--variant",
            "fp32",
        ]
    )
    assert code == 0
    records = read_jsonl(out)
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5, 7, 8, 9]  # blank line 6 skipped, order kept
    errors = {r["line"]: r["error"] for r in records if "error" in r}
    assert set(errors) == {2, 3, 4, 5, 9}
    assert "invalid UTF-8" in errors[2] and "invalid JSON" in errors[3] and "missing 'text'" in errors[4]
    assert "'text' is int" in errors[5]
    model = kolite.load(tiny_artifact("000"), variant="fp32")
    good = {r["line"]: r for r in records if "error" not in r}
    expected = model.classify(["영화 최고", "\ud800 lone surrogate", ""], top_k=None)
    for line, predictions in zip((1, 7, 8), expected, strict=True):
        assert_same_results(good[line]["predictions"], [p.to_dict() for p in predictions])
    assert good[1]["id"] == "a" and good[7]["text"] == "\ufffd lone surrogate"
    assert "5 of 8 items failed" in capsys.readouterr().err


def test_predict_plain_lines_and_ner(tiny_artifact, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("홍길동은 서울에 산다\n\n부산에 간다\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "predict",
                str(tiny_artifact("004")),
                "-i",
                str(path),
                "-o",
                str(out),
                "--aggregation",
                "first",
                "--stride",
                "9",
            ]
        )
        == 0
    )
    records = read_jsonl(out)
    model = kolite.load(tiny_artifact("004"))
    expected = model.tag(["홍길동은 서울에 산다", "부산에 간다"], aggregation="first", stride=9)
    assert [r["line"] for r in records] == [1, 3]
    for record, entities in zip(records, expected, strict=True):
        assert_same_results(record["entities"], [e.to_dict() for e in entities])


def test_predict_long_text_windows_and_raw_logits(tiny_artifact, tmp_path):
    long_review = "처음엔 지루했다 " * 200 + "마지막 장면이 정말 최고였다 " * 80
    path = tmp_path / "in.txt"
    path.write_text(long_review + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    argv = ["predict", str(tiny_artifact("000")), "-i", str(path), "-o", str(out), "--top-k", "all"]
    options = ["--long-text", "windows", "--pooling", "max", "--stride", "32", "--function-to-apply", "none"]
    assert main([*argv, *options]) == 0
    (record,) = read_jsonl(out)
    with kolite.load(tiny_artifact("000")) as model:
        expected = model.classify(long_review, top_k=None, long_text="windows", pooling="max", stride=32,
                                  function_to_apply="none")
    assert_same_results(record["predictions"], [p.to_dict() for p in expected])


def test_exit_code_is_1_when_every_item_failed_or_strict(tiny_artifact, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"x": 1}\n\xff\n')
    assert main(["predict", str(tiny_artifact("000")), "-i", str(path), "-o", str(tmp_path / "o")]) == 1
    path.write_bytes(b'{"text": "ok"}\n{"x": 1}\n')
    assert main(["predict", str(tiny_artifact("000")), "-i", str(path), "-o", str(tmp_path / "o")]) == 0
    assert main(["predict", str(tiny_artifact("000")), "-i", str(path), "-o", str(tmp_path / "o"), "--strict"]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variant", "int4"], "no variant 'int4'"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--top-k", "0"], "--top-k must be a positive integer"),
        (["--aggregation", "mean"], "aggregation does not apply to text-classification models"),
        (["--long-text", "summarise"], "long_text must be one of truncate, windows"),
        (["--function-to-apply", "relu"], "function_to_apply must be one of"),
        ([], "give texts as arguments or --input"),
    ],
)
def test_usage_and_model_errors_exit_2_with_one_line(tiny_artifact, capsys, args, message):
    texts = [] if not args else ["좋다"]
    assert main(["predict", str(tiny_artifact("000")), *texts, *args]) == (0 if message is None else 2)
    err = capsys.readouterr().err
    if message is not None:
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_artifact_exits_2(capsys, tmp_path):
    assert main(["predict", str(tmp_path / "nope"), "x"]) == 2
    assert "neither an artifact folder" in capsys.readouterr().err


def test_stdin_to_stdout_through_the_console_script(tiny_artifact):
    result = subprocess.run(
        [sys.executable, "-m", "kolite.cli", "predict", str(tiny_artifact("000")), "첫째", "--input", "-"],
        input='{"id": 9, "text": "둘째"}\n'.encode(),
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    records = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert [(r["line"], r["text"]) for r in records] == [(1, "첫째"), (1, "둘째")]
    assert records[1]["id"] == 9


def test_info_summarises_and_verifies(tiny_artifact, capsys):
    folder = tiny_artifact("004")
    assert main(["info", str(folder), "--verify"]) == 0
    out = capsys.readouterr().out
    manifest = kolite.load_manifest(folder)
    assert manifest.task in out and all(label in out for label in manifest.labels)
    assert all(name in out for name in manifest.variants) and "auto on cpu:" in out
    low95 = manifest.variants["int8"].validation["token_label_agreement_low95"]
    assert f"(lower 95% bound {low95:.2%})" in out  # next to the agreement it bounds
    assert out.count("sha256 ok") == 1 + len(manifest.variants)
    assert main(["info", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == manifest.to_dict()


def test_broken_plugin_becomes_a_stub_and_predict_still_works(monkeypatch, tiny_artifact, capsys, tmp_path):
    from kolite import cli

    monkeypatch.setitem(cli.INTERNAL_PLUGINS, "serve", "kolite_missing_module_for_test")
    assert main(["serve", "--port", "1"]) == 2
    assert "pip install 'kolite[serve]'" in capsys.readouterr().err
    assert main(["predict", str(tiny_artifact("000")), "좋다", "-o", str(tmp_path / "o")]) == 0
