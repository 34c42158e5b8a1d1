"""kolite label survives kill -9: the re-run skips finished parts and yields exactly one row per input row."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kolite.labeling import LabelJob, label_file
from test_label import label_argv, make_texts, read_tsv, write_tsv

ROWS = 3000
PART_ROWS = 100


def cli(source: Path, out: Path, artifact: Path) -> list[str]:
    # --batch-size 1 makes the tiny model slow enough (one session call per row) to be killed mid-run.
    return [sys.executable, "-m", "kolite.cli", *label_argv(source, out, artifact, part_rows=PART_ROWS, batch_size=1)]


@pytest.mark.slow  # a real SIGKILL of a running job, then the re-run
def test_resume_after_sigkill_gives_one_row_per_input_row(tiny_artifact, tmp_path):
    artifact = tiny_artifact("000")
    texts = make_texts(ROWS, seed=7)
    source = write_tsv(tmp_path / "in.tsv", texts)
    out = tmp_path / "out.tsv"
    parts = tmp_path / "out.tsv.parts"

    process = subprocess.Popen(cli(source, out, artifact), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(parts.glob("part-*.done.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, "the job ended before it could be killed"
    finished = sorted(parts.glob("part-*.done.json"))
    assert finished and len(finished) < ROWS // PART_ROWS, "kill -9 must land mid-run"
    assert not out.exists()

    resumed = subprocess.run(
        [*cli(source, out, artifact), "--summary-json", str(tmp_path / "s.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed:" in resumed.stderr  # it skipped the parts of the killed run
    rows = read_tsv(out)
    assert [r["id"] for r in rows] == [str(i) for i in range(ROWS)]  # exactly one row per input row, in order
    assert [r["document"] for r in rows] == texts

    reference = tmp_path / "reference.tsv"
    label_file(
        LabelJob(
            source,
            reference,
            str(artifact),
            prefix="pred_",
            part_rows=PART_ROWS,
            batch_size=1,
            workers=1,
            threads=1,
            progress=False,
        )
    )
    expected = read_tsv(reference)
    assert [r["pred_label"] for r in rows] == [r["pred_label"] for r in expected]
    assert [r["pred_score"] for r in rows] == [r["pred_score"] for r in expected]
    with out.open(encoding="utf-8", newline="") as handle:
        assert sum(1 for _ in csv.reader(handle, delimiter="\t")) == ROWS + 1  # no duplicated header or rows
