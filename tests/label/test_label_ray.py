"""RAY TEST: ``kolite label --engine ray`` on an isolated local Ray instance started here.

The instance is always a new one (``address="local"``, its own temp dir, stopped at the end): a Ray cluster that
happens to run on the machine is never used. The Ray engine must write the same bytes as the local engine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest
from kolite.errors import KoliteError
from kolite.labeling import LabelJob, label_file
from test_label import make_texts, read_tsv, write_tsv

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    temp_dir = tempfile.mkdtemp(prefix="kolite-ray-test-")  # short: Ray's socket paths must fit 107 bytes
    # address="local": always a new instance of our own, never one already running here
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir,
             configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def run_both(tmp_path, source, artifact, suffix, **options):
    outputs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.{suffix}"
        summary = label_file(
            LabelJob(source, out, str(artifact), engine=engine, variant="fp32", progress=False, **options)
        )
        outputs[engine] = (out, summary)
    return outputs


def run_with_deadline(job: LabelJob, seconds: float) -> BaseException | None:
    """Run ``job`` in a thread; the exception it raised (None if it succeeded). Fails the test if it hangs."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            label_file(job)
            outcome.append(None)
        except BaseException as exc:  # handed over to the test's thread
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    if not outcome:
        pytest.fail(f"the Ray job hung (no result or error within {seconds} s)")
    return outcome[0]


def test_ray_tsv_matches_local_engine(local_ray, tiny_artifact, tmp_path):
    texts = make_texts(700, seed=11)
    texts[5] = ""
    source = write_tsv(tmp_path / "in.tsv", texts)
    outputs = run_both(tmp_path, source, tiny_artifact("000"), "tsv", prefix="pred_", part_rows=100)
    remote = read_tsv(outputs["ray"][0])
    assert [r["id"] for r in remote] == [str(i) for i in range(700)]  # one row per input row, input order
    assert [r["document"] for r in remote] == texts
    assert outputs["ray"][0].read_bytes() == outputs["local"][0].read_bytes()
    summary = outputs["ray"][1]
    assert (summary.rows, summary.labelled, summary.error_count) == (700, 699, 1)
    assert summary.engine.startswith("ray")


def test_ray_jsonl_bad_rows_like_local(local_ray, tiny_artifact, tmp_path):
    good = make_texts(30, seed=12)
    lines = [json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in enumerate(good)]
    lines[3] = json.dumps({"id": 3, "text": 7})
    lines[4] = "{broken"
    lines[5] = json.dumps({"id": 5, "text": None})
    lines[6] = "[" * 100_000 + "]" * 100_000  # nested too deeply for a recursive parser
    source = tmp_path / "in.jsonl"
    source.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": 30, "text": "\xff"}\n')
    outputs = run_both(tmp_path, source, tiny_artifact("000"), "jsonl", text_column="text", part_rows=8)
    remote = [json.loads(line) for line in outputs["ray"][0].read_text().splitlines()]
    assert len(remote) == 31
    assert outputs["ray"][0].read_bytes() == outputs["local"][0].read_bytes()
    assert outputs["ray"][1].error_count == outputs["local"][1].error_count == 5
    assert remote[6]["error"].startswith("invalid JSON: nested too deeply")


def test_ray_csv_with_multi_megabyte_cells_and_malformed_rows(local_ray, tiny_artifact, tmp_path):
    big = "영화 최고 " * 400_000  # 6 MB of UTF-8 in one cell (Arrow's CSV reader splits input in 1 MB blocks)
    source = tmp_path / "in.csv"
    source.write_text(f'id,text\n0,좋다\n1,"{big}"\n2,별로,extra\n3,"줄\n바꿈"\n', encoding="utf-8")
    outputs = run_both(tmp_path, source, tiny_artifact("000"), "csv", text_column="text", part_rows=2)
    assert outputs["ray"][0].read_bytes() == outputs["local"][0].read_bytes()
    assert (outputs["ray"][1].rows, outputs["ray"][1].labelled) == (4, 3)


def test_ray_honours_the_detected_encoding(local_ray, tiny_artifact, tmp_path):
    from test_label_encodings import table_text

    source = tmp_path / "in.csv"
    source.write_bytes(table_text("csv").encode("cp949"))
    outputs = run_both(tmp_path, source, tiny_artifact("000"), "csv", text_column="리뷰")
    assert outputs["ray"][0].read_bytes() == outputs["local"][0].read_bytes()
    assert outputs["ray"][1].labelled == 20


def test_ray_job_resumes_from_the_parts_of_a_local_run(local_ray, tiny_artifact, tmp_path):
    # Engine, workers and threads are not part of the job: parts written by the local engine are Ray's too.
    source = write_tsv(tmp_path / "in.tsv", make_texts(300, seed=13))
    job = LabelJob(source, tmp_path / "out.tsv", str(tiny_artifact("000")), part_rows=50, prefix="p_", workers=1)
    first = label_file(LabelJob(**{**job.__dict__, "keep_parts": True, "progress": False}))
    reference = job.output.read_bytes()
    job.output.unlink()
    for part in (1, 4):  # as if the run had been killed before these parts were written
        (tmp_path / "out.tsv.parts" / f"part-{part:06d}.done.json").unlink()
    resumed = label_file(LabelJob(**{**job.__dict__, "engine": "ray", "workers": None, "progress": False}))
    assert job.output.read_bytes() == reference
    assert (first.resumed_rows, resumed.resumed_rows) == (0, 200)
    assert resumed.engine.startswith("ray") and not (tmp_path / "out.tsv.parts").exists()


def test_a_plan_the_cluster_cannot_run_is_refused_at_once(local_ray, tiny_artifact, tmp_path):
    source = write_tsv(tmp_path / "in.tsv", make_texts(10, seed=14))
    job = LabelJob(source, tmp_path / "o.tsv", str(tiny_artifact("000")), engine="ray", threads=3, prefix="p_")
    error = run_with_deadline(job, 60)
    assert isinstance(error, KoliteError) and "3 CPUs" in str(error), error


def test_a_stalled_ray_job_stops_with_an_error(local_ray, tiny_artifact, tmp_path):
    # Another job holds every CPU of the cluster: the labelling actors can never start. The job must say so
    # within --stall-timeout instead of waiting forever.
    @ray.remote(num_cpus=2)
    class Hog:
        def ping(self) -> int:
            return 1

    hog = Hog.remote()
    ray.get(hog.ping.remote())
    source = write_tsv(tmp_path / "in.tsv", make_texts(10, seed=15))
    artifact = str(tiny_artifact("000"))
    job = LabelJob(source, tmp_path / "o.tsv", artifact, engine="ray", prefix="p_", progress=False, stall_timeout=5)
    error = run_with_deadline(job, 120)
    ray.kill(hog)
    assert isinstance(error, KoliteError) and "no progress" in str(error), error


def test_parquet_with_default_workers_finishes(tiny_artifact, tmp_path):
    # Default --workers = every CPU: the actors hold all of them, yet reading must still happen (it deadlocked).
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    source = tmp_path / "in.parquet"
    texts = make_texts(120, seed=16)
    pq.write_table(pa.table({"id": list(range(120)), "text": texts}), source)
    out = tmp_path / "out.parquet"
    command = [sys.executable, "-m", "kolite.cli", "label", str(source), "--model", str(tiny_artifact("000"))]
    command += ["--text-column", "text", "--out", str(out), "--engine", "ray", "--no-progress", "--part-rows", "40"]
    # A child process: it starts (and stops) its own local Ray, as the CLI does for a user.
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("kolite label --engine ray on Parquet with the default --workers hung")
    assert result.returncode == 0, result.stderr[-2000:]
    assert pq.read_table(out).column("text").to_pylist() == texts
