"""Running worker subprocesses: one per contender and measurement, so RSS and import cost are attributable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from kolite_bench.config import REPO_ROOT
from kolite_bench.contenders.base import ContenderSpec
from kolite_bench.worker import FIRST_RESULT_MARK

__all__ = ["WorkerError", "cold_start", "run_worker"]


class WorkerError(RuntimeError):
    """A worker subprocess failed; the message holds the tail of its stderr."""


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    # torch/MKL read these at import; onnxruntime gets its thread count from SessionOptions.
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT / "benchmarks"), env.get("PYTHONPATH")]))
    return env


def _write_job(workdir: Path, tag: str, job: dict[str, Any]) -> tuple[Path, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    job_file, result_file = workdir / f"{tag}.job.json", workdir / f"{tag}.result.json"
    result_file.unlink(missing_ok=True)
    job_file.write_text(json.dumps({**job, "result_file": str(result_file)}, ensure_ascii=False), encoding="utf-8")
    return job_file, result_file


def _tee(stream: IO[bytes], log: IO[bytes]) -> bytes:
    """Copy a worker's stderr (tqdm progress bars) to ours and to its log; return the tail for error messages."""
    tail = b""
    while chunk := stream.read1(4096):  # type: ignore[attr-defined]
        sys.stderr.buffer.write(chunk)
        sys.stderr.buffer.flush()
        log.write(chunk)
        tail = (tail + chunk)[-8000:]
    return tail


def run_worker(workdir: Path, tag: str, job: dict[str, Any], threads: int) -> dict:
    """Run one job to completion; stderr (tqdm progress) streams to our stderr, its tail is kept for errors."""
    job_file, result_file = _write_job(workdir, tag, job)
    with (workdir / f"{tag}.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "kolite_bench.worker", str(job_file)], env=_env(threads),
                                stdout=log, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        tail = _tee(proc.stderr, log)
        returncode = proc.wait()
    if returncode != 0 or not result_file.is_file():
        lines = tail.decode("utf-8", errors="replace").replace("\r", "\n").strip().splitlines()
        raise WorkerError(f"{tag} failed (exit {returncode}):\n" + "\n".join(lines[-15:]))
    return json.loads(result_file.read_text(encoding="utf-8"))


def cold_start(workdir: Path, spec: ContenderSpec, texts_file: Path, repeats: int) -> dict[str, Any]:
    """Fresh process start → first result (median of ``repeats`` runs), plus that process's peak RSS."""
    runs = []
    for i in range(repeats):
        job_file, result_file = _write_job(workdir, f"{spec.name}.cold{i}",
                                           {"mode": "cold", "spec": spec.to_dict(), "texts_file": str(texts_file)})
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "kolite_bench.worker", str(job_file)], env=_env(spec.threads),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first_result_s = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == FIRST_RESULT_MARK:
                first_result_s = time.perf_counter() - start
        _, stderr = proc.communicate()
        if proc.returncode != 0 or first_result_s is None:
            raise WorkerError(f"cold start of {spec.name} failed: {stderr.strip()[-1500:]}")
        inside = json.loads(result_file.read_text(encoding="utf-8"))
        runs.append({"process_to_first_result_s": first_result_s, **inside})
    runs.sort(key=lambda r: r["process_to_first_result_s"])
    median = runs[len(runs) // 2]
    return {"repeats": repeats, "seconds": median["process_to_first_result_s"], "load_s": median["load_s"],
            "rss_peak_mb": median["rss_peak_mb"], "all_seconds": [r["process_to_first_result_s"] for r in runs]}
