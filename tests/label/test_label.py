"""kolite label, local engine: formats in/out, every input column kept, labels equal the runtime's, bad rows."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import kolite
import pytest
from kolite.errors import KoliteError
from kolite.labeling import LabelJob, label_file
from kolite.labeling.texts import EMPTY_TEXT, MISSING_TEXT, UNDECODABLE_TEXT

WORDS = [
    "영화",
    "최고",
    "별로",
    "진짜",
    "재밌다",
    "지루해",
    "배우",
    "연기",
    "ㅋㅋ",
    "감동",
    '"명작"',
    "시간 낭비",
    "OST",
    "2점",
]


def label_argv(source: Path, out: Path, artifact: Path, *, part_rows: int, batch_size: int,
               workers: int = 1) -> list[str]:
    """``kolite label`` arguments of the resume and fault tests: small parts, one thread per worker, no bar."""
    return ["label", str(source), "--model", str(artifact), "--out", str(out), "--prefix", "pred_", "--part-rows",
            str(part_rows), "--batch-size", str(batch_size), "--workers", str(workers), "--threads", "1",
            "--no-progress"]


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) for _ in range(n)]


def write_tsv(path: Path, texts: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["id", "document", "label"])
        writer.writerows([i, text, i % 2] for i, text in enumerate(texts))
    return path


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def reference(artifact: Path, texts: list[str], variant: str) -> list[kolite.Prediction]:
    model = kolite.load(artifact, variant=variant)
    try:
        return [top[0] for top in model.classify(texts, top_k=1)]
    finally:
        model.close()


def test_tsv_keeps_columns_and_matches_the_runtime(tiny_artifact, tmp_path):
    artifact = tiny_artifact("000")
    texts = make_texts(300)
    source = write_tsv(tmp_path / "in.tsv", texts)
    out = tmp_path / "out.tsv"
    summary = label_file(
        LabelJob(
            source,
            out,
            str(artifact),
            variant="fp32",
            prefix="pred_",
            part_rows=128,
            workers=1,
            threads=1,
            progress=False,
        )
    )
    rows = read_tsv(out)
    assert [r["document"] for r in rows] == texts  # order, quotes and every cell preserved
    assert [r["id"] for r in rows] == [str(i) for i in range(300)]
    assert [r["label"] for r in rows] == [str(i % 2) for i in range(300)]  # the gold column is untouched
    expected = reference(artifact, texts, "fp32")
    assert [r["pred_label"] for r in rows] == [p.label for p in expected]
    assert [float(r["pred_score"]) for r in rows] == pytest.approx([p.score for p in expected], abs=1e-4)
    assert all(r["pred_error"] == "" for r in rows)
    assert (summary.rows, summary.labelled, summary.error_count) == (300, 300, 0)
    assert not (tmp_path / "out.tsv.parts").exists()  # parts are removed once the output is complete


def test_colliding_column_names_are_refused(tiny_artifact, tmp_path):
    source = write_tsv(tmp_path / "in.tsv", make_texts(5))
    with pytest.raises(KoliteError, match="--prefix"):
        label_file(LabelJob(source, tmp_path / "out.tsv", str(tiny_artifact("000")), progress=False, workers=1))


def test_jsonl_bad_rows_are_flagged_not_dropped(tiny_artifact, tmp_path):
    good = make_texts(4, seed=1)
    lines = [
        json.dumps({"id": 0, "text": good[0], "meta": {"src": "a"}}, ensure_ascii=False),
        json.dumps({"id": 1, "text": ""}),
        json.dumps({"id": 2, "text": "   "}),
        json.dumps({"id": 3, "text": None}),
        json.dumps({"id": 4, "text": 42}),
        json.dumps({"id": 5, "text": ["a", "b"]}),
        json.dumps({"id": 6}),
        "{not json",
        "[1, 2]",
        json.dumps({"id": 9, "text": good[1]}, ensure_ascii=False),
        '{"id": 10, "text": "\\ud800 lone surrogate"}',
        json.dumps({"id": 11, "text": good[2]}, ensure_ascii=False),
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    data += b'{"id": 12, "text": "bad \xff\xfe bytes"}\n'
    source = tmp_path / "in.jsonl"
    source.write_bytes(data)
    out = tmp_path / "out.jsonl"
    summary = label_file(
        LabelJob(source, out, str(tiny_artifact("000")), text_column="text", part_rows=5, workers=1, progress=False)
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 13
    errors = [r["error"] for r in rows]
    assert errors[:7] == [None, EMPTY_TEXT, EMPTY_TEXT, MISSING_TEXT, "not text (int)", "not text (list)", MISSING_TEXT]
    assert errors[7].startswith("invalid JSON") and rows[7]["raw_line"] == "{not json"
    assert errors[8] == "not a JSON object (list)" and rows[8]["raw_line"] == "[1, 2]"
    assert errors[9] is None and errors[11] is None
    assert errors[10] == UNDECODABLE_TEXT and errors[12] == UNDECODABLE_TEXT
    assert rows[12]["text"] == "bad \ufffd\ufffd bytes"  # JSON output is valid UTF-8
    assert rows[0]["meta"] == {"src": "a"}  # nested values keep their JSON type
    labelled = [r for r in rows if r["error"] is None]
    assert all(r["label"] in ("negative", "positive") and 0 <= r["score"] <= 1 for r in labelled)
    assert all(r["label"] is None and r["score"] is None for r in rows if r["error"] is not None)
    assert (summary.rows, summary.labelled, summary.error_count) == (13, 3, 10)
    assert summary.errors[EMPTY_TEXT] == 2 and summary.errors[UNDECODABLE_TEXT] == 2


def test_csv_undecodable_and_malformed_rows(tiny_artifact, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(
        "id,text,note\n1,좋은 영화,ok\n".encode()
        + b"2,\xff\xfe broken,raw \xc3\n"
        + '3,,empty\n4,재밌다\n5,최고,a,b\n6,"줄\n바꿈",multi-line\n'.encode()
    )
    out = tmp_path / "out.csv"
    summary = label_file(
        LabelJob(
            source, out, str(tiny_artifact("000")), text_column="text", workers=1, allow_empty=False, progress=False
        )
    )
    raw = out.read_bytes()
    assert b"\xff\xfe broken" in raw and b"raw \xc3" in raw  # undecodable cells are written back unchanged
    with out.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert rows[1]["error"] == UNDECODABLE_TEXT and rows[2]["error"] == EMPTY_TEXT
    assert rows[3]["error"] == "row has 2 fields, header has 3"
    assert rows[4]["error"] == 'row has 4 fields, header has 3 (extra fields: ["b"])'
    assert rows[5]["text"] == "줄\n바꿈" and rows[5]["error"] == ""
    assert [bool(r["label"]) for r in rows] == [True, False, False, False, False, True]
    assert (summary.rows, summary.labelled) == (6, 2)


def test_allow_empty_labels_empty_texts_like_the_runtime(tiny_artifact, tmp_path):
    source = write_tsv(tmp_path / "in.tsv", ["", "영화 최고"])
    out = tmp_path / "out.tsv"
    label_file(
        LabelJob(
            source,
            out,
            str(tiny_artifact("000")),
            prefix="p_",
            allow_empty=True,
            workers=1,
            variant="fp32",
            progress=False,
        )
    )
    rows = read_tsv(out)
    assert [r["p_label"] for r in rows] == [p.label for p in reference(tiny_artifact("000"), ["", "영화 최고"], "fp32")]
    assert all(r["p_error"] == "" for r in rows)


def test_parquet_in_and_out_keeps_the_schema(tiny_artifact, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    texts = make_texts(50, seed=2)
    texts[3] = None
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": pa.array(range(50), pa.int64()), "text": texts}), source, row_group_size=16)
    out = tmp_path / "out.parquet"
    label_file(
        LabelJob(
            source,
            out,
            str(tiny_artifact("000")),
            text_column="text",
            part_rows=20,
            workers=1,
            variant="fp32",
            progress=False,
        )
    )
    table = pq.read_table(out)
    assert table.schema.field("id").type == pa.int64() and table.schema.field("score").type == pa.float64()
    assert table.column("id").to_pylist() == list(range(50))
    assert table.column("error").to_pylist()[3] == MISSING_TEXT
    valid = [t for t in texts if t is not None]
    labels = [x for x in table.column("label").to_pylist() if x is not None]
    assert labels == [p.label for p in reference(tiny_artifact("000"), valid, "fp32")]


def test_worker_processes_and_threads_give_identical_files(tiny_artifact, tmp_path):
    source = write_tsv(tmp_path / "in.tsv", make_texts(600, seed=3))
    outputs = []
    for workers, threads in ((1, 2), (2, 1)):
        out = tmp_path / f"out-{workers}x{threads}.jsonl"
        label_file(
            LabelJob(
                source,
                out,
                str(tiny_artifact("000")),
                prefix="pred_",
                part_rows=250,
                workers=workers,
                threads=threads,
                progress=False,
            )
        )  # default variant (int8 when it passed its gates)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 600


def test_a_different_job_is_not_mixed_into_existing_parts(tiny_artifact, tmp_path):
    source = write_tsv(tmp_path / "in.tsv", make_texts(40, seed=4))
    out = tmp_path / "out.tsv"
    parts = tmp_path / "out.tsv.parts"
    parts.mkdir()
    (parts / "job.json").write_text(json.dumps({"text_column": "other"}))
    job = LabelJob(source, out, str(tiny_artifact("000")), prefix="pred_", workers=1, progress=False)
    with pytest.raises(KoliteError, match="different job"):
        label_file(job)
    summary = label_file(LabelJob(**{**job.__dict__, "restart": True}))
    assert summary.rows == 40 and len(read_tsv(out)) == 40
    with pytest.raises(KoliteError, match="already exists"):
        label_file(job)


def test_tsv_raw_keeps_quotes_verbatim(tiny_artifact, tmp_path):
    # NSMC-style TSV: quotes are data, not CSV quoting (the HF NSMC loader reads it with QUOTE_NONE).
    texts = ['"""스토리 최고"""', '"명작" 이다', 'a "b', "평범"]
    source = tmp_path / "in.tsv"
    source.write_text("id\tdocument\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(texts)), encoding="utf-8")
    out = tmp_path / "out.tsv"
    label_file(
        LabelJob(
            source, out, str(tiny_artifact("000")), input_format="tsv-raw", workers=1, variant="fp32", progress=False
        )
    )
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id\tdocument\tlabel\tscore\terror"
    assert [line.split("\t")[1] for line in lines[1:]] == texts  # written back verbatim, unquoted
    labels = [line.split("\t")[2] for line in lines[1:]]
    assert labels == [p.label for p in reference(tiny_artifact("000"), texts, "fp32")]


def test_ner_model_adds_entities_as_json(tiny_artifact, tmp_path):
    import gzip

    artifact = tiny_artifact("004")
    texts = ["홍길동은 서울에 산다", "삼성전자 주가가 3일 올랐다", ""]
    source = tmp_path / "in.jsonl.gz"  # gzip input is read as a stream too
    with gzip.open(source, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
    out = tmp_path / "out.jsonl"
    summary = label_file(
        LabelJob(source, out, str(artifact), text_column="text", workers=1, variant="fp32", progress=False)
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert set(rows[0]) == {"text", "entities", "error"}
    model = kolite.load(artifact, variant="fp32")
    expected = [[e.to_dict() for e in entities] for entities in model.tag(texts[:2])]
    model.close()
    got = [r["entities"] for r in rows[:2]]
    assert [[(e["label"], e["start"], e["end"], e["text"]) for e in x] for x in got] == [
        [(e["label"], e["start"], e["end"], e["text"]) for e in x] for x in expected
    ]
    assert rows[2]["entities"] is None and rows[2]["error"] == EMPTY_TEXT
    assert (summary.rows, summary.labelled) == (3, 2)


@pytest.mark.parametrize("fmt", ["tsv", "jsonl"])
def test_input_is_streamed_not_read_whole(tmp_path, fmt):
    import tracemalloc

    from kolite.labeling.formats import iter_chunks

    texts = make_texts(20_000, seed=5)
    if fmt == "tsv":
        source = write_tsv(tmp_path / "big.tsv", texts)
    else:
        source = tmp_path / "big.jsonl"
        source.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), "utf-8")
    tracemalloc.start()
    chunks = iter_chunks(source, fmt, 100)
    first = next(chunks)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(first.rows) == 100
    assert peak < source.stat().st_size / 4  # one chunk in memory, not the file
    assert sum(len(c.rows) for c in chunks) == 20_000 - 100


def test_long_text_windows_reach_the_model_and_the_job_spec(tiny_artifact, tmp_path):
    artifact = tiny_artifact("000")
    texts = ["처음엔 지루했다 " * 200 + "마지막 장면이 정말 최고였다 " * 80, "짧은 리뷰"]
    source = write_tsv(tmp_path / "in.tsv", texts)
    out = tmp_path / "out.tsv"
    settings = {"variant": "fp32", "prefix": "pred_", "workers": 1, "progress": False}
    label_file(LabelJob(source, out, str(artifact), long_text="windows", pooling="max", stride=32, keep_parts=True,
                        **settings))
    with kolite.load(artifact, variant="fp32") as model:
        expected = [r[0] for r in model.classify(texts, long_text="windows", pooling="max", stride=32)]
    rows = read_tsv(out)
    assert [(r["pred_label"], float(r["pred_score"])) for r in rows] == [(p.label, round(p.score, 6)) for p in expected]
    # Parts labelled with other model options belong to another job: they are never mixed in.
    out.unlink()
    with pytest.raises(KoliteError, match="long_text"):
        label_file(LabelJob(source, out, str(artifact), **settings))
