"""RAY TEST: ``kolite label --engine ray`` on a local Ray instance started here (``ray.init(num_cpus=2)``).

The Ray engine must produce the same rows, in the same order, with the same labels and errors as the local one.
"""

from __future__ import annotations

import json

import pytest
from kolite.labeling import LabelJob, label_file
from test_label import make_texts, read_tsv, write_tsv

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def run_both(tmp_path, source, artifact, suffix, **options):
    outputs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.{suffix}"
        summary = label_file(
            LabelJob(source, out, str(artifact), engine=engine, variant="fp32", progress=False, **options)
        )
        outputs[engine] = (out, summary)
    return outputs


def test_ray_tsv_matches_local_engine(local_ray, tiny_artifact, tmp_path):
    texts = make_texts(700, seed=11)
    texts[5] = ""
    source = write_tsv(tmp_path / "in.tsv", texts)
    outputs = run_both(tmp_path, source, tiny_artifact("000"), "tsv", prefix="pred_", part_rows=100)
    local, remote = (read_tsv(outputs[e][0]) for e in ("local", "ray"))
    assert [r["id"] for r in remote] == [str(i) for i in range(700)]  # one row per input row, input order
    assert [r["document"] for r in remote] == texts
    assert [r["pred_label"] for r in remote] == [r["pred_label"] for r in local]
    assert [r["pred_error"] for r in remote] == [r["pred_error"] for r in local]
    scores = [(float(a["pred_score"] or 0), float(b["pred_score"] or 0)) for a, b in zip(local, remote, strict=True)]
    assert all(abs(a - b) < 1e-4 for a, b in scores)
    summary = outputs["ray"][1]
    assert (summary.rows, summary.labelled, summary.error_count) == (700, 699, 1)
    assert summary.engine.startswith("ray")


def test_ray_jsonl_bad_rows_like_local(local_ray, tiny_artifact, tmp_path):
    good = make_texts(30, seed=12)
    lines = [json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in enumerate(good)]
    lines[3] = json.dumps({"id": 3, "text": 7})
    lines[4] = "{broken"
    lines[5] = json.dumps({"id": 5, "text": None})
    source = tmp_path / "in.jsonl"
    source.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": 30, "text": "\xff"}\n')
    outputs = run_both(tmp_path, source, tiny_artifact("000"), "jsonl", text_column="text", part_rows=8)
    local, remote = ([json.loads(x) for x in outputs[e][0].read_text().splitlines()] for e in ("local", "ray"))
    assert len(remote) == 31
    assert [r.get("id") for r in remote] == [r.get("id") for r in local]
    assert [r["error"] for r in remote] == [r["error"] for r in local]
    assert [r["label"] for r in remote] == [r["label"] for r in local]
    assert outputs["ray"][1].error_count == outputs["local"][1].error_count == 4
