"""Running worker subprocesses: one per contender and measurement, so RSS and import cost are attributable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def run_worker(workdir: Path, tag: str, job: dict[str, Any], threads: int, timeout: float | None = None) -> dict:
    """Run one job to completion; stderr (tqdm progress) streams to our stderr, its tail is kept for errors."""
    job_file, result_file = _write_job(workdir, tag, job)
    log = workdir / f"{tag}.log"
    with log.open("w", encoding="utf-8") as log_handle:
        proc = subprocess.run([sys.executable, "-m", "kolite_bench.worker", str(job_file)], env=_env(threads),
                              stdout=log_handle, stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)
        log_handle.write(proc.stderr)
    if proc.returncode != 0 or not result_file.is_file():
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise WorkerError(f"{tag} failed (exit {proc.returncode}):\n{tail}")
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
