"""The CUDA check: kolite's CUDA path against PyTorch references, kolite on the machine's CPU and torch CUDA.

Runs on a lent GPU machine (``scripts/gpu_check.sh``), torch-free except for the optional torch peer. Input is a
payload made here by ``kolite_bench.gpu_payload`` (artifacts, texts, PyTorch reference logits computed on CPU, the
peer's fp16 weights). For each seed and CUDA variant it measures fidelity (labels, max |Δlogit|, NER entity
agreement decoded with the runtime's own BIO grouping) and speed (bs1 p50/p99, batch 32 and 256 texts/s, peak GPU
memory), then kolite int8-static on the machine's CPU and torch CUDA fp16 on the same token ids.

``--dry-run`` runs every step on CPU (CUDA variants are loaded with ``device="cpu"``), so CI exercises everything
up to the first CUDA call; its numbers are not GPU numbers and the results file says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["check_seed", "fidelity", "main", "speed"]

CUDA_VARIANTS = ("fp16", "fp32-opt")


def _log(message: str) -> None:
    print(f"[gpu-check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class GpuMemory:
    """Device memory in use (MiB) via NVML, sampled by the caller; ``None`` everywhere without NVML (dry run)."""

    def __init__(self, enabled: bool) -> None:
        self.handle = None
        if not enabled:
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._nvml = pynvml
        except Exception as exc:  # NVML missing or not permitted: memory is simply not reported
            _log(f"NVML unavailable ({exc}); GPU memory not reported")

    def used_mib(self) -> float | None:
        if self.handle is None:
            return None
        return self._nvml.nvmlDeviceGetMemoryInfo(self.handle).used / 2**20


def reference_outputs(payload: Path, seed: str) -> tuple[list[str], list[np.ndarray]]:
    """Texts and PyTorch's logits, one array per text ([labels], or [tokens, labels] for NER)."""
    data = np.load(payload / seed / "reference.npz")
    texts = json.loads((payload / seed / "texts.json").read_text(encoding="utf-8"))
    lengths = data["lengths"]
    flat = data["logits"]
    if data["per_token"]:
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        return texts, [flat[bounds[i] : bounds[i + 1]] for i in range(len(lengths))]
    return texts, [flat[i] for i in range(len(flat))]


def fidelity(model: Any, texts: Sequence[str], reference: Sequence[np.ndarray], batch_size: int) -> dict[str, Any]:
    """Labels / entities of ``model`` against PyTorch's on the same token ids (the runtime's decode for both)."""
    encoded = model.encode(list(texts))
    outputs = model.run(encoded, batch_size=batch_size)
    deltas = [float(np.max(np.abs(o - r))) for o, r in zip(outputs, reference, strict=True)]
    numbers: dict[str, Any] = {"texts": len(texts), "max_abs_logit_delta": max(deltas)}
    if outputs[0].ndim == 2:  # NER: entities of every aggregation, decoded the same way from both outputs
        for aggregation in ("none", "simple", "first", "average", "max"):
            options = model.options(aggregation=aggregation)
            ours = model.decode(outputs, encoded, options)
            theirs = model.decode(list(reference), encoded, options)
            ours_set = {(i, e.start, e.end, e.label) for i, ents in enumerate(ours) for e in ents}
            theirs_set = {(i, e.start, e.end, e.label) for i, ents in enumerate(theirs) for e in ents}
            agree = len(ours_set & theirs_set)
            total = len(ours_set) + len(theirs_set)
            numbers[f"entity_agreement_{aggregation}"] = 1.0 if total == 0 else 2 * agree / total
        labels_ours = np.concatenate([o.argmax(-1) for o in outputs])
        labels_ref = np.concatenate([r.argmax(-1) for r in reference])
    else:
        labels_ours = np.array([o.argmax() for o in outputs])
        labels_ref = np.array([r.argmax() for r in reference])
    numbers["label_agreement"] = float((labels_ours == labels_ref).mean())
    numbers["label_flips"] = int((labels_ours != labels_ref).sum())
    # Batch invariance on this device: the first 64 texts alone vs in the batched pass above.
    alone = [model.run(model.encode([t]), batch_size=1)[0] for t in texts[:64]]
    numbers["bs1_vs_batched_max_abs_delta"] = max(
        float(np.max(np.abs(a - o))) for a, o in zip(alone, outputs, strict=False)
    )
    return numbers


def _percentiles(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "n": len(ms)}


def speed(
    run_texts: Callable[[Sequence[str], int], Any],
    texts: Sequence[str],
    bs1_texts: int,
    batch_sizes: Sequence[int],
    repeats: int,
    memory: GpuMemory | None = None,
    sync: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """bs1 latency over the first ``bs1_texts`` texts, then texts/s at each batch size over all texts (best of
    ``repeats`` passes after one untimed warm-up pass, which also meets every shape the timed passes see)."""
    result: dict[str, Any] = {}
    peak = memory.used_mib() if memory else None
    for text in texts[:bs1_texts]:  # warm-up: every bs1 shape once
        run_texts([text], 1)
    sync()
    latencies = []
    for text in texts[:bs1_texts]:
        start = time.perf_counter()
        run_texts([text], 1)
        sync()
        latencies.append(time.perf_counter() - start)
    result["bs1"] = _percentiles(latencies)
    for batch in batch_sizes:
        run_texts(texts, batch)
        sync()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run_texts(texts, batch)
            sync()
            best = min(best, time.perf_counter() - start)
            if memory is not None and memory.handle is not None:
                peak = max(peak or 0.0, memory.used_mib() or 0.0)
        result[f"bs{batch}_texts_per_s"] = len(texts) / best
    result["gpu_memory_used_peak_mib"] = peak
    return result


def overhead_sweep(model: Any, texts: Sequence[str], batch: int, overheads: Sequence[int]) -> dict[str, float]:
    """texts/s of calls of ``batch`` texts in file order (a server's batches) for each per-call overhead the
    planner's length grouping may assume (``kolite.batching.CALL_OVERHEAD_TOKENS``): how much padding a call is
    worth on this device."""
    from kolite.batching import CALL_OVERHEAD_TOKENS

    kind = "cuda" if model.device == "cuda" else "cpu"
    chunks = [list(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    encoded = [model.encode(chunk) for chunk in chunks]
    saved, result = CALL_OVERHEAD_TOKENS[kind], {}
    try:
        for overhead in overheads:
            CALL_OVERHEAD_TOKENS[kind] = overhead
            for _ in range(2):  # the first pass meets the shapes, the second is timed
                start = time.perf_counter()
                for enc in encoded:
                    model.run(enc, batch_size=batch)
            result[str(overhead)] = len(texts) / (time.perf_counter() - start)
    finally:
        CALL_OVERHEAD_TOKENS[kind] = saved
    return result


def model_only(model: Any, texts: Sequence[str], batch_sizes: Sequence[int], repeats: int) -> dict[str, float]:
    """texts/s of ``model.run`` on texts encoded once (tokenization left out), best of ``repeats`` after a warm-up:
    the figure to hold against a plain onnxruntime loop (``kolite_bench.gpu_plain``); the speed rows above are end
    to end (text in, logits out)."""
    encoded = model.encode(list(texts))
    start = time.perf_counter()
    model.encode(list(texts))
    result = {"encode_s": time.perf_counter() - start}
    for batch in batch_sizes:
        model.run(encoded, batch_size=batch)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            model.run(encoded, batch_size=batch)
            best = min(best, time.perf_counter() - start)
        result[f"bs{batch}_texts_per_s"] = len(texts) / best
    return result


def _kolite_runner(model: Any) -> Callable[[Sequence[str], int], Any]:
    return lambda texts, batch: model.run(model.encode(list(texts)), batch_size=batch)


def check_seed(payload: Path, seed: str, args: argparse.Namespace, memory: GpuMemory) -> dict[str, Any]:
    import kolite

    texts, reference = reference_outputs(payload, seed)
    texts, reference = texts[: args.texts], reference[: args.texts]
    artifact = payload / seed / "artifact"
    device = "cpu" if args.dry_run else "cuda"
    out: dict[str, Any] = {"texts": len(texts), "variants": {}}
    for variant in CUDA_VARIANTS:
        if not (artifact / f"model.{variant}.onnx").is_file():
            out["variants"][variant] = {"skipped": "not in the payload"}
            continue
        _log(f"{seed} {variant} on {device}: load")
        baseline = memory.used_mib()
        start = time.perf_counter()
        model = kolite.load(artifact, variant=variant, device=device, parallel=0 if args.dry_run else None)
        row: dict[str, Any] = {"device": model.device, "providers": model.session.providers,
                               "load_s": time.perf_counter() - start, "gpu_memory_before_mib": baseline}
        _log(f"{seed} {variant}: fidelity on {len(texts)} texts")
        row["fidelity"] = fidelity(model, texts, reference, batch_size=256)
        _log(f"{seed} {variant}: speed")
        row["speed"] = speed(_kolite_runner(model), texts, args.bs1_texts, args.batch_sizes, args.repeats, memory)
        row["model_only"] = model_only(model, texts, args.batch_sizes, args.repeats)
        if variant == "fp16" or args.dry_run:
            row["file_order_bs256_texts_per_s_by_call_overhead"] = overhead_sweep(
                model, texts, 256, (0, 64, 512, 4096))
        out["variants"][variant] = row
        model.close()
        del model
    _log(f"{seed} int8-static on the machine's CPU")
    cpu_model = kolite.load(artifact, variant="int8-static", device="cpu")
    out["cpu"] = {
        "variant": "int8-static", "threads": cpu_model.threads,
        "fidelity": fidelity(cpu_model, texts, reference, batch_size=32),
        "speed": speed(_kolite_runner(cpu_model), texts, args.bs1_texts, (32,), 1),
    }
    cpu_model.close()
    if not args.no_torch:
        from kolite_bench.gpu_torch_peer import torch_peer

        _log(f"{seed} torch peer")
        out["torch"] = torch_peer(payload / seed, texts, reference, args, speed)
    return out


def environment(dry_run: bool) -> dict[str, Any]:
    import onnxruntime as ort

    env: dict[str, Any] = {
        "host": platform.node(), "python": platform.python_version(), "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(), "cpus": os.cpu_count(), "dry_run": dry_run,
        "load_average": list(os.getloadavg()),
    }
    if not dry_run:
        import subprocess

        query = "name,driver_version,memory.total,clocks.max.sm"
        env["gpu"] = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                                    capture_output=True, text=True, check=False).stdout.strip()
    return env


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kolite_bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--payload", type=Path, required=True, help="folder made by kolite_bench.gpu_payload")
    parser.add_argument("--out", type=Path, required=True, help="results JSON to write")
    parser.add_argument("--seeds", default="000,004")
    parser.add_argument("--texts", type=int, default=2000, help="texts per seed for fidelity and batch speed")
    parser.add_argument("--bs1-texts", type=int, default=300)
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[32, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip the torch CUDA fp16 peer")
    parser.add_argument("--dry-run", action="store_true", help="every step on CPU (CI): up to the first CUDA call")
    parser.add_argument("--run-id", default=time.strftime("gpu-%Y%m%dT%H%M%SZ", time.gmtime()))
    return parser.parse_args(argv)


def load_cuda_libraries() -> str:
    """Make the CUDA/cuDNN libraries onnxruntime-gpu needs findable: from the nvidia-* wheels (onnxruntime's
    ``preload_dlls``), or, with KOLITE_GPU_IMPORT_TORCH=1, by importing torch first (it loads its own copies)."""
    if os.environ.get("KOLITE_GPU_IMPORT_TORCH") == "1":
        import torch

        torch.cuda.init()
        return f"torch {torch.__version__} imported first"
    import onnxruntime

    try:
        onnxruntime.preload_dlls()
        return "onnxruntime.preload_dlls()"
    except Exception as exc:  # the system's library path may still have them
        return f"preload_dlls failed: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    if not args.dry_run:
        _log(f"CUDA libraries: {load_cuda_libraries()}")
    results: dict[str, Any] = {"run_id": args.run_id, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "environment": environment(args.dry_run), "seeds": {}, "steps_s": {}}
    if args.dry_run:
        results["note"] = "dry run: every step on CPU; no number here is a GPU number"
    memory = GpuMemory(enabled=not args.dry_run)
    for seed in args.seeds.split(","):
        step = time.perf_counter()
        try:
            results["seeds"][seed] = check_seed(args.payload, seed, args, memory)
        except Exception as exc:  # one seed's failure is reported, the others still run
            _log(f"{seed} FAILED: {type(exc).__name__}: {exc}")
            results["seeds"][seed] = {"error": f"{type(exc).__name__}: {exc}"}
        results["steps_s"][seed] = time.perf_counter() - step
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    results["total_s"] = time.perf_counter() - started
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    from kolite_bench.gpu_report import table

    print(table(results))
    return 0 if all("error" not in s for s in results["seeds"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
