"""kolite label under SIGKILL: at random moments (a part half written, the output half joined, the parts half
removed...) every re-run of the same command yields exactly the bytes of an uninterrupted run; killed workers
do not outlive their parent.

The kills are real SIGKILLs. Most land on chosen file events: a small driver script counts every write, rename,
copy and removal the job makes and kills itself at event k (k spread over the whole run by a seeded RNG), so
each phase is hit; a few more come from outside after a random delay.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kolite.cli import main
from test_label import label_argv, make_texts, write_tsv

pytestmark = pytest.mark.slow  # SIGKILLs the labeller dozens of times and re-runs it each time

ROWS = 120
PART_ROWS = 15

# Runs `kolite` in a process that SIGKILLs itself at the k-th file event (0: never; prints the event count).
DRIVER = r"""
import os, shutil, signal, sys
import pyarrow.parquet as pq

kill_at, events = int(sys.argv[1]), 0

def counted(function):
    def wrapper(*args, **kwargs):
        global events
        events += 1
        if events == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        result = function(*args, **kwargs)
        events += 1
        if events == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapper

os.replace, os.rename, os.fsync, os.unlink, os.rmdir = (
    counted(os.replace), counted(os.rename), counted(os.fsync), counted(os.unlink), counted(os.rmdir))
shutil.copyfileobj, shutil.rmtree = counted(shutil.copyfileobj), counted(shutil.rmtree)
pq.ParquetWriter.write_table = counted(pq.ParquetWriter.write_table)

from kolite.cli import main
code = main(sys.argv[2:])
print(f"events={events}")
sys.exit(code)
"""


def label_args(source: Path, out: Path, artifact: Path, workers: int = 1) -> list[str]:
    return label_argv(source, out, artifact, part_rows=PART_ROWS, batch_size=4, workers=workers)


def run_driver(tmp_path: Path, kill_at: int, args: list[str]) -> subprocess.CompletedProcess:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER, encoding="utf-8")
    command = [sys.executable, str(script), str(kill_at), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.mark.parametrize("suffix", ["tsv", "jsonl", "parquet"])
def test_sigkill_at_random_moments_then_resume_gives_identical_bytes(tiny_artifact, tmp_path, suffix):
    pytest.importorskip("pyarrow")
    artifact = tiny_artifact("000")
    source = write_tsv(tmp_path / "in.tsv", make_texts(ROWS, seed=31))
    reference = tmp_path / f"reference.{suffix}"
    first = run_driver(tmp_path, 0, label_args(source, reference, artifact))
    assert first.returncode == 0, first.stderr
    total = int(first.stdout.strip().rsplit("events=", 1)[1])
    expected = reference.read_bytes()
    rng = random.Random(f"kolite-faults-{suffix}")
    runs = 8
    # One kill in each eighth of the run's events, at a random event inside it: every phase gets hit.
    points = [1 + int((i + rng.random()) * total / runs) for i in range(runs)]
    for run, kill_at in enumerate(points):
        folder = tmp_path / f"run-{run}"
        folder.mkdir()
        out = folder / f"out.{suffix}"
        killed = run_driver(tmp_path, kill_at, label_args(source, out, artifact))
        assert killed.returncode == -signal.SIGKILL, (kill_at, total, killed.stderr[-2000:])
        assert main(label_args(source, out, artifact)) == 0, f"resume after a kill at event {kill_at}/{total}"
        assert out.read_bytes() == expected, f"kill at event {kill_at}/{total}"
        assert leftovers(folder, {out.name}) == [], f"kill at event {kill_at}/{total}"


def test_sigkill_after_random_delays_with_worker_processes(tiny_artifact, tmp_path):
    artifact = tiny_artifact("000")
    source = write_tsv(tmp_path / "in.tsv", make_texts(ROWS, seed=32))
    reference = tmp_path / "reference.tsv"

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "kolite.cli", *label_args(source, out, artifact, workers=2)]

    started = time.monotonic()
    subprocess.run(command(reference), check=True, capture_output=True, timeout=300)
    duration = time.monotonic() - started  # only to spread the kills over a run's lifetime, whatever the machine
    rng = random.Random(33)
    killed = 0
    for run in range(4):
        folder = tmp_path / f"run-{run}"
        folder.mkdir()
        out = folder / "out.tsv"
        process = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.1, 0.95) * duration)
        process.send_signal(signal.SIGKILL)
        if process.wait() != 0:  # killed (not finished first): the same command, with 1 worker this time, resumes
            killed += 1
            assert main(label_args(source, out, artifact)) == 0
        assert out.read_bytes() == reference.read_bytes()
        assert leftovers(folder, {out.name}) == []
    assert killed, "every run finished before its kill"


def alive(processes: list) -> list:
    import psutil

    def running(process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return [p for p in processes if running(p)]


def test_worker_processes_exit_when_the_labeller_is_killed(tiny_artifact, tmp_path):
    psutil = pytest.importorskip("psutil")
    source = write_tsv(tmp_path / "in.tsv", make_texts(3000, seed=34))
    out = tmp_path / "out.tsv"
    args = label_args(source, out, tiny_artifact("000"), workers=2)
    args[args.index("--batch-size") + 1] = "1"  # slow enough to be killed mid-run
    process = subprocess.Popen([sys.executable, "-m", "kolite.cli", *args], stderr=subprocess.DEVNULL)
    parts = tmp_path / "out.tsv.parts"
    deadline = time.monotonic() + 120
    while not list(parts.glob("part-*.done.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    children = psutil.Process(process.pid).children(recursive=True)  # 2 workers + the resource tracker
    assert process.poll() is None and len(children) >= 3, "the job must still be labelling with its workers"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 30
    while alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = alive(children)
    described = [f"{p.pid} {' '.join(p.cmdline()[-3:])}" for p in survivors]
    for survivor in survivors:  # never leave them behind, even when the test fails
        survivor.kill()
    assert not survivors, described
