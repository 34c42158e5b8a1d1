"""One ``kolite bench`` run: every contender on the same texts, then scores, limits, sizes, report and plots."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from kolite_bench.config import FALLBACK_REFERENCE, GUARDED_SUFFIX, REFERENCE, REPO_ROOT, BenchConfig, kolite_variant
from kolite_bench.contenders.base import ContenderSpec
from kolite_bench.datasets import BenchDataset, load_dataset
from kolite_bench.env import collect_environment, load_average
from kolite_bench.limits import measure_physical_limit, token_lengths
from kolite_bench.metrics import classification_scores, ner_scores
from kolite_bench.subprocesses import WorkerError, cold_start, run_worker

__all__ = ["RESULTS_SCHEMA", "plan_contenders", "run_bench"]

RESULTS_SCHEMA = "kolite-bench/2"  # 2: speed in rotated rounds (bs1 + sorted/file-order passes), OpenVINO
_TORCH_ONLY_FORMATS = {"sroberta"}  # no transformers pipeline / ORTModel class exists for the custom head


def _log(message: str) -> None:
    print(f"[kolite bench] {message}", file=sys.stderr, flush=True)


def plan_contenders(config: BenchConfig) -> tuple[list[str], dict[str, str]]:
    """Contenders that run, and the reason each requested one does not."""
    from kolite.manifest import load_manifest

    from kolite_bench.contenders.openvino_peer import openvino_missing

    manifest = load_manifest(config.artifact)
    variants = manifest.variants if config.include_failed else manifest.passed_variants
    run, skipped = [], {}
    for name in config.contenders:
        if name.startswith("kolite-"):
            variant, guarded = kolite_variant(name)
            if variant not in variants:
                failed = variant in manifest.variants
                skipped[name] = f"artifact has no passed {variant!r} variant" + (
                    " (it failed its gate; --include-failed times it anyway)" if failed else "")
            elif "CPUExecutionProvider" not in variants[variant].providers:
                skipped[name] = f"{variant} targets {', '.join(variants[variant].providers)}; this run is CPU-only"
            elif guarded and not variants[variant].guard:
                skipped[name] = f"{variant} records no fidelity guard threshold (exported before kolite measured one)"
            else:
                run.append(name)
        elif name in ("pipeline", "optimum-int8") and config.seed.checkpoint_format in _TORCH_ONLY_FORMATS:
            skipped[name] = "not applicable: custom checkpoint (mean pooling + linear head) has no HF task class"
        elif name.startswith("openvino-") and (missing := openvino_missing()):
            skipped[name] = missing
        else:
            run.append(name)
    return run, skipped


def _spec(config: BenchConfig, name: str) -> ContenderSpec:
    options: dict[str, Any] = {}
    if name.startswith("kolite-"):
        options["variant"], options["guard"] = kolite_variant(name)
    elif name == "torch-longest":
        options["padding"] = "longest"
    elif name == "torch":
        options["padding"] = "max_length"
    elif name.startswith("openvino-"):
        options["calibration"] = {"dataset": config.seed.dataset, "data_dir": str(config.data_dir)}
    return ContenderSpec(name=name, task=config.seed.task, source=config.source, artifact=str(config.artifact),
                         layout=config.seed.checkpoint_format, threads=config.threads, max_length=config.max_length,
                         batch_size=config.batch_size, cache_dir=str(REPO_ROOT / ".cache" / "bench"), options=options)


def _latency_indices(n_texts: int, count: int) -> list[int]:
    """Evenly spaced texts across the file, so the latency sample has the set's length distribution."""
    count = min(count, n_texts)
    return sorted({int(i) for i in np.linspace(0, n_texts - 1, count)})


def _prepare(config: BenchConfig, names: list[str], workdir: Path) -> dict[str, str]:
    """One-off, cached work (optimum's and OpenVINO's export + quantization); the contenders it failed for."""
    failed, done = {}, set()
    for name in names:
        kind = name.rsplit("-", 1)[0] if name.startswith("openvino-") else name
        if not name.startswith(("optimum", "openvino")) or kind in done:
            continue
        done.add(kind)  # both OpenVINO modes share one quantized model
        _log(f"{name}: export + int8 quantization (cached)")
        try:
            run_worker(workdir, f"{name}.prepare", {"mode": "prepare", "spec": _spec(config, name).to_dict()},
                       config.threads)
        except (WorkerError, OSError) as exc:
            failed.update({n: str(exc) for n in names if n == name or n.rsplit("-", 1)[0] == kind})
    return failed


def _cold_start(config: BenchConfig, name: str, texts_file: Path, workdir: Path) -> dict[str, Any]:
    saved = workdir / f"{name}.cold.json"
    if saved.is_file():  # --resume
        return json.loads(saved.read_text(encoding="utf-8"))
    _log(f"{name}: cold start x{config.cold_start_repeats}")
    result = cold_start(workdir, _spec(config, name), texts_file, config.cold_start_repeats)
    saved.write_text(json.dumps(result), encoding="utf-8")
    return result


def _rounds(config: BenchConfig, names: list[str], texts_file: Path, workdir: Path,
            lengths: list[int]) -> dict[str, dict[str, Any]]:
    """Every contender's rounds (the first also runs its sweep and whole-set pass), summarized, or its error."""
    from kolite_bench.rounds import run_rounds, summarize_rounds

    latency = {"indices": _latency_indices(len(lengths), config.latency_texts), "warmup": config.warmup,
               "repeats": config.latency_repeats}
    jobs = {name: {"mode": "round", "spec": _spec(config, name).to_dict(), "texts_file": str(texts_file),
                   "latency": latency,
                   "score": {"sweep": {"batch_sizes": list(config.sweep_batch_sizes),
                                       "n": min(config.sweep_texts, len(lengths))},
                             "throughput": {"batch_size": config.batch_size,
                                            "limit": config.contender_limits.get(name)}}} for name in names}
    texts = {"n": len(lengths), "group_size": config.throughput_texts, "batch_size": config.batch_size,
             "lengths": lengths}
    out: dict[str, dict[str, Any]] = {}
    for name, rounds in run_rounds(names, jobs, config.rounds, texts, workdir).items():
        if "error" in rounds[0]:
            out[name] = rounds[0]
            continue
        first = rounds[0]
        out[name] = {**{k: first[k] for k in ("load_s", "describe", "model_bytes", "sweep", "throughput",
                                              "predictions", "rss_peak_mb")},
                     **summarize_rounds(rounds),
                     "rounds_raw": [{k: v for k, v in r.items() if k not in ("latency_bs1", "predictions")}
                                    for r in rounds]}
    return out


def _score(config: BenchConfig, data: BenchDataset, results: dict[str, dict[str, Any]]) -> str | None:
    ok = {k: v for k, v in results.items() if "predictions" in v}
    # The original's predictions: the seed-card recipe, unless padding-to-longest (same weights, same answers up to
    # float noise) covered more texts because the slow recipe was capped.
    candidates = [r for r in (REFERENCE, FALLBACK_REFERENCE) if r in ok]
    reference = max(candidates, key=lambda r: len(ok[r]["predictions"]), default=None)
    ref_preds = ok[reference]["predictions"] if reference else None
    for result in ok.values():
        preds = result.pop("predictions")
        if config.seed.task == "token-classification":
            result["scores"] = ner_scores(data.texts, preds, data.labels, ref_preds)  # type: ignore[arg-type]
        else:
            from kolite.manifest import load_manifest

            num_labels = len(load_manifest(config.artifact).labels)
            result["scores"] = classification_scores(preds, data.labels, ref_preds, num_labels)  # type: ignore[arg-type]
    return reference


def run_bench(config: BenchConfig) -> dict[str, Any]:
    started = time.time()
    data = load_dataset(config.seed.dataset, config.data_dir, config.limit)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_id = config.resume or f"{config.seed.seed_id}-{'quick-' if config.quick else ''}{stamp}"
    workdir = config.out_dir / "raw" / run_id
    workdir.mkdir(parents=True, exist_ok=True)
    texts_file = workdir / "texts.json"
    texts_file.write_text(json.dumps(data.texts, ensure_ascii=False), encoding="utf-8")
    environment = collect_environment(config.threads)
    contenders, skipped = plan_contenders(config)
    _log(f"{run_id}: {len(data.texts)} texts of {data.name}, contenders {contenders}, skipped {sorted(skipped)}")
    results: dict[str, dict[str, Any]] = {n: {"error": e} for n, e in _prepare(config, contenders, workdir).items()}
    ready = [name for name in contenders if name not in results]
    lengths = token_lengths(config.artifact, data.texts)
    for name, result in _rounds(config, ready, texts_file, workdir, lengths).items():
        if "error" in result:
            _log(f"{name} FAILED: {result['error']}")
            results[name] = result
            continue
        try:
            results[name] = {**result, "cold_start": _cold_start(config, name, texts_file, workdir)}
        except (WorkerError, OSError) as exc:
            _log(f"{name} FAILED: {exc}")
            results[name] = {"error": str(exc)}
    results = {name: results[name] for name in contenders}  # the requested order
    reference = _score(config, data, results)
    limit = None
    if config.gemm:
        _log("GEMM micro-benchmark (int8 MatMulInteger at the model's shapes, 1 and N threads) and CPU peaks")
        limit = measure_physical_limit(config.artifact, config.threads, sum(lengths), len(data.texts),
                                       0.1 if config.quick else 0.3)
    from kolite_bench.sizes import closure_size, runtime_venv_size

    cache = REPO_ROOT / ".cache" / "bench"
    install = {
        "kolite": runtime_venv_size(REPO_ROOT, cache, build=config.install_size),
        "torch": closure_size(["torch", "transformers"]),
        "optimum": closure_size(["optimum", "optimum-onnx[onnxruntime]"]),
        # What serving the OpenVINO model needs: the runtime and tokenizers (NNCF only quantizes, once).
        "openvino": closure_size(["openvino", "tokenizers"]),
    }
    environment["load_average_end"] = load_average()
    speed = {"contenders": results, "environment": environment}
    from kolite_bench.report_guard import guard_ratios
    from kolite_bench.report_speed import busy_rounds, round_ratios

    return {
        "ratios_per_round": {name: round_ratios(speed, name) for name in results if name.startswith("kolite")},
        "guard_ratios": {name: guard_ratios(speed, name, name.removesuffix(GUARDED_SUFFIX)) for name in results
                         if name.endswith(GUARDED_SUFFIX) and name.removesuffix(GUARDED_SUFFIX) in results},
        "busy_rounds": busy_rounds(speed),
        "schema": RESULTS_SCHEMA, "run_id": run_id, "created_at": stamp, "wall_seconds": time.time() - started,
        "model": {"seed_id": config.seed.seed_id, "hub_id": config.seed.hub_id, "task": config.seed.task,
                  "source": config.source, "source_kind": config.source_kind, "stand_in": config.stand_in,
                  "artifact": str(config.artifact)},
        "dataset": {"name": data.name, "path": data.path, "license": data.license, "n_texts": len(data.texts),
                    "labelled": data.labelled},
        "settings": {"threads": config.threads, "batch_size": config.batch_size, "quick": config.quick,
                     "latency_texts": config.latency_texts, "latency_repeats": config.latency_repeats,
                     "warmup": config.warmup, "sweep_batch_sizes": list(config.sweep_batch_sizes),
                     "sweep_texts": config.sweep_texts, "cold_start_repeats": config.cold_start_repeats,
                     "contender_limits": config.contender_limits, "max_length": config.max_length,
                     "rounds": config.rounds, "throughput_texts": config.throughput_texts},
        "environment": environment, "reference": reference, "contenders": results, "skipped": skipped,
        "physical_limit": limit, "install_size": install,
    }
