"""Worker subprocess: builds ONE contender and measures it, so its imports and peak RSS are its own.

``python -m kolite_bench.worker JOB.json`` where the job's ``mode`` is
``prepare`` (one-off, cached work), ``cold`` (import + load + first result, then exit) or ``round`` (one round of
the speed comparison: bs1 latency first, in this fresh process, then the timed batch passes the harness planned;
the first round's job adds ``score``: the batch-size sweep and the whole-set pass whose predictions are scored).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from kolite_bench.contenders import ContenderSpec, build_contender
from kolite_bench.contenders.base import Contender, Outputs

__all__ = ["FIRST_RESULT_MARK", "main", "percentiles"]

FIRST_RESULT_MARK = "KOLITE_BENCH_FIRST_RESULT"


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    values = np.asarray(samples_ms, dtype=np.float64)
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def measure_latency(contender: Contender, texts: list[str], warmup: int, repeats: int) -> dict[str, Any]:
    """Batch-1 latency: ``warmup`` untimed passes over the texts (every input shape seen, as in a long-running
    service), then every call of ``repeats`` timed passes is a sample (no median per text, so a slow state of the
    runtime shows in p99 instead of being voted away)."""
    for _ in range(warmup):
        for text in texts:
            contender.predict([text])
    samples = []
    for _ in range(repeats):
        for text in texts:
            start = time.perf_counter()
            contender.predict([text])
            samples.append((time.perf_counter() - start) * 1000)
    return {"n_texts": len(texts), "repeats": repeats, "warmup": warmup, "ms": percentiles(samples),
            "samples_ms": [round(x, 4) for x in samples]}


def measure_passes(contender: Contender, texts: list[str], passes: list[dict[str, Any]]) -> dict[str, Any]:
    """Time each planned pass (its batches are index lists into ``texts``) after the contender's untimed warm-up of
    that pass (``Contender.warm_pass``): every batch shape has been seen, as in a long labelling job (OpenVINO and
    onnxruntime both pay extra for a shape's first run), so the clock sees the steady state, not compile time."""
    results = {}
    for plan in passes:
        batches = [[texts[i] for i in batch] for batch in plan["batches"]]
        is_sorted = plan["kind"] == "sorted"
        contender.warm_pass(batches, is_sorted)
        start = time.perf_counter()
        contender.run_pass(batches, is_sorted)
        seconds = time.perf_counter() - start
        n_texts = sum(len(b) for b in batches)
        results[plan["kind"]] = {"n_texts": n_texts, "batches": len(batches), "seconds": seconds,
                                 "texts_per_s": n_texts / seconds}
    return results


def measure_sweep(contender: Contender, texts: list[str], batch_sizes: list[int]) -> list[dict[str, Any]]:
    """Throughput vs batch size on the same texts (file order), one warm pass each."""
    rows = []
    for batch_size in batch_sizes:
        contender.predict_all(texts[: max(batch_size, 8)], batch_size)  # warm the shapes
        start = time.perf_counter()
        contender.predict_all(texts, batch_size)
        seconds = time.perf_counter() - start
        rows.append({"batch_size": batch_size, "n_texts": len(texts), "seconds": seconds,
                     "texts_per_s": len(texts) / seconds})
    return rows


def measure_throughput(contender: Contender, texts: list[str], batch_size: int) -> tuple[dict[str, Any], Outputs]:
    from tqdm import tqdm

    contender.predict_all(texts[: batch_size * 2], batch_size)  # warm-up outside the clock
    with tqdm(total=len(texts), desc=f"{contender.name} bs{batch_size}", unit="text", file=sys.stderr,
              mininterval=2.0) as bar:
        before = contender.counters()
        start = time.perf_counter()
        outputs = contender.predict_all(texts, batch_size, progress=bar.update)
        seconds = time.perf_counter() - start
        after = contender.counters()
    result = {"batch_size": batch_size, "n_texts": len(texts), "seconds": seconds, "texts_per_s": len(texts) / seconds}
    if after:  # e.g. the rows kolite's fidelity guard re-ran in the float graph during this pass
        result["counters"] = {key: after[key] - before.get(key, 0) for key in after}
    return result, outputs


def _jsonable(outputs: Outputs) -> list:
    if isinstance(outputs, np.ndarray):
        return outputs.astype(int).tolist()
    return [[[int(s), int(e), str(t)] for s, e, t in spans] for spans in outputs]


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    contender = build_contender(ContenderSpec(**job["spec"]))
    mode = job["mode"]
    if mode == "prepare":
        start = time.perf_counter()
        contender.prepare()
        return {"prepare_s": time.perf_counter() - start}
    texts: list[str] = json.loads(Path(job["texts_file"]).read_text(encoding="utf-8"))
    start = time.perf_counter()
    contender.load()
    load_s = time.perf_counter() - start
    if mode == "cold":
        contender.predict(texts[:1])
        print(FIRST_RESULT_MARK, flush=True)
        return {"load_s": load_s, "first_result_s": time.perf_counter() - start, "rss_peak_mb": peak_rss_mb()}
    result: dict[str, Any] = {"load_s": load_s, "describe": contender.describe(),
                              "model_bytes": contender.model_bytes()}
    latency = job["latency"]
    result["latency_bs1"] = measure_latency(contender, [texts[i] for i in latency["indices"]], latency["warmup"],
                                            latency["repeats"])
    result["passes"] = measure_passes(contender, texts, job["passes"])
    if "score" in job:  # the first round also gives the predictions every score uses
        score = job["score"]
        result["sweep"] = measure_sweep(contender, texts[: score["sweep"]["n"]], score["sweep"]["batch_sizes"])
        limit = score["throughput"].get("limit")
        pass_texts = texts if limit is None else texts[:limit]
        result["throughput"], outputs = measure_throughput(contender, pass_texts, score["throughput"]["batch_size"])
        result["predictions"] = _jsonable(outputs)
    result["rss_peak_mb"] = peak_rss_mb()
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result = run_job(job)
    Path(job["result_file"]).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
