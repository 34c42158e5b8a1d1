"""int8 recipe study: full-set fidelity against PyTorch, batch invariance, and interleaved A/B speed of ONNX files.

    # fidelity of several graphs of one checkpoint against its PyTorch module, whole validation set
    python -m kolite_bench.int8_study fidelity /work/shared/standins/koelectra-small-v3-nsmc nsmc \
        artifacts/000/model.int8.onnx artifacts/000/model.int8-static.onnx [--limit N] [--json out.json]
    # per-call interleaved A/B on one thread: every batch runs on each graph in turn (rotating order)
    python -m kolite_bench.int8_study speed artifacts/000 artifacts/000/model.int8.onnx \
        artifacts/000/model.int8-static.onnx [--texts 1024] [--single 300] [--rounds 3]
    # bitwise batch invariance: each text alone vs length-bucketed vs file-order batches
    python -m kolite_bench.int8_study invariance artifacts/000 artifacts/000/model.int8-static.onnx

Speed on a shared machine: with one intra-op thread the calling thread does all the work, so its CPU time
(``time.thread_time``) is what the graph costs, and other processes cannot steal it; wall time is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from kolite.cpu_budget import cpu_budget

__all__ = ["fidelity", "invariance", "main", "speed"]


def _session(path: str | Path, threads: int | None = 1) -> Any:
    """The graph opened exactly as ``kolite.load`` opens it (kolite.session owns how)."""
    from kolite.session import cpu_session

    return cpu_session(path, threads)


def fidelity(checkpoint_dir: Path, data: str, models: Sequence[Path], limit: int | None = None) -> dict[str, Any]:
    """Each graph's gate numbers against the PyTorch module on the whole ``data`` set (the export gate's maths)."""
    from kolite_export.layouts import load_checkpoint
    from kolite_export.validation import Gate, encode_set, evaluate_gate, onnx_outputs, reference_outputs
    from kolite_export.validation_data import load_validation_set

    checkpoint = load_checkpoint(checkpoint_dir)
    dataset = load_validation_set(data, limit)
    encoded = encode_set(checkpoint, dataset.texts, 64)
    started = time.perf_counter()
    reference = reference_outputs(checkpoint, encoded)
    result: dict[str, Any] = {"texts": len(dataset.texts), "torch_seconds": time.perf_counter() - started}
    for model in models:
        outputs = onnx_outputs(_session(model, cpu_budget().threads), checkpoint, encoded)
        numbers = evaluate_gate(model.name, Gate(), checkpoint, reference, outputs, dataset)
        if checkpoint.task != "token-classification":
            numbers["label_flips"] = sum(int(r.argmax() != o.argmax()) for r, o in zip(reference, outputs, strict=True))
        result[str(model)] = numbers
    return result


def _encoded(artifact: Path, count: int) -> tuple[list[list[int]], Any]:
    """``count`` real texts of the artifact's own validation data, tokenized by kolite, in a fixed random order."""
    import kolite
    from kolite_export.exporter import default_validation_data
    from kolite_export.validation_data import load_validation_set

    model = kolite.load(artifact, variant="fp32")
    texts = list(load_validation_set(default_validation_data(model.manifest.task, model.manifest.labels)).texts)
    picks = random.Random(1).sample(range(len(texts)), min(count, len(texts)))
    ids = model.encoder.encode([texts[i] for i in picks]).sequences
    model.close()
    return ids, model.manifest


def _batches(ids: list[list[int]], manifest: Any, size: int, by_length: bool) -> list[tuple[np.ndarray, dict]]:
    from kolite.batching import pad_batch, plan_batches

    groups = (
        plan_batches([len(s) for s in ids], size)
        if by_length
        else [np.arange(i, min(i + size, len(ids))) for i in range(0, len(ids), size)]
    )
    result = []
    for rows in groups:
        feeds = pad_batch([ids[i] for i in rows], manifest.pad_token_id)
        feeds.setdefault("token_type_ids", np.zeros_like(feeds["input_ids"]))
        result.append((rows, {name: feeds[name] for name in manifest.inputs}))
    return result


def speed(artifact: Path, models: Sequence[Path], texts: int, single: int, rounds: int) -> dict[str, Any]:
    """Batch 32 (length-bucketed) texts per CPU-second and batch-1 CPU ms per text, one thread, interleaved."""
    ids, manifest = _encoded(artifact, max(texts, single))
    sessions = [_session(m) for m in models]
    bs32 = [feeds for _, feeds in _batches(ids[:texts], manifest, 32, True)]
    bs1 = [feeds for _, feeds in _batches(ids[:single], manifest, 1, False)]
    for session in sessions:
        for feeds in bs32[:4] + bs1[:20]:
            session.run(None, feeds)
    cpu32 = [[0.0] * len(models) for _ in range(rounds)]
    wall32 = [[0.0] * len(models) for _ in range(rounds)]
    cpu1: list[list[float]] = [[] for _ in models]
    turn, load_before = 0, os.getloadavg()
    for r in range(rounds):
        for group, is_bs32 in ((bs32, True), (bs1, False)):
            for feeds in group:
                order = list(range(len(models)))
                turn += 1
                for j in order[turn % len(models) :] + order[: turn % len(models)]:
                    cpu, wall = time.thread_time(), time.perf_counter()
                    sessions[j].run(None, feeds)
                    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                    if is_bs32:
                        cpu32[r][j] += cpu
                        wall32[r][j] += wall
                    else:
                        cpu1[j].append(cpu)
    result: dict[str, Any] = {"load_average": [load_before, os.getloadavg()], "texts": texts, "rounds": rounds}
    for j, model in enumerate(models):
        result[str(model)] = {
            "bs32_texts_per_cpu_s": statistics.median(texts / cpu32[r][j] for r in range(rounds)),
            "bs32_texts_per_s_wall": statistics.median(texts / wall32[r][j] for r in range(rounds)),
            "bs1_cpu_ms_p50": 1e3 * statistics.median(cpu1[j]),
            "bs32_vs_first": statistics.median(cpu32[r][0] / cpu32[r][j] for r in range(rounds)),
            "bs1_vs_first": statistics.median(np.array(cpu1[0]) / np.array(cpu1[j])),
        }
    return result


def invariance(artifact: Path, model: Path, texts: int) -> dict[str, Any]:
    """How many texts get bitwise the logits they get alone, per batching (length-bucketed and file order)."""
    ids, manifest = _encoded(artifact, texts)
    ids.append(ids[0][:1] + ids[0][-1:])  # [CLS][SEP]: the empty text
    session = _session(model, cpu_budget().threads)

    def rows(size: int, by_length: bool) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.empty(0)] * len(ids)
        for indices, feeds in _batches(ids, manifest, size, by_length):
            logits = session.run(["logits"], feeds)[0]
            for row, i in enumerate(indices):
                out[i] = logits[row, : len(ids[i])] if logits.ndim == 3 else logits[row]
        return out

    alone = rows(1, False)
    result: dict[str, Any] = {"texts": len(ids)}
    for size, by_length in ((32, True), (32, False), (7, False)):
        got = rows(size, by_length)
        name = f"batch {size}, {'length-bucketed' if by_length else 'file order'}"
        result[name] = {
            "bitwise_equal": sum(np.array_equal(a, b) for a, b in zip(alone, got, strict=True)),
            "max_abs_diff": max(float(np.abs(a - b).max()) for a, b in zip(alone, got, strict=True)),
        }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kolite_bench.int8_study", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fid = sub.add_parser("fidelity")
    fid.add_argument("checkpoint", type=Path)
    fid.add_argument("data", help="nsmc, kote, klue-ner or a file")
    fid.add_argument("models", type=Path, nargs="+")
    fid.add_argument("--limit", type=int)
    spd = sub.add_parser("speed")
    spd.add_argument("artifact", type=Path, help="for the tokenizer and data")
    spd.add_argument("models", type=Path, nargs="+")
    spd.add_argument("--texts", type=int, default=1024)
    spd.add_argument("--single", type=int, default=300)
    spd.add_argument("--rounds", type=int, default=3)
    inv = sub.add_parser("invariance")
    inv.add_argument("artifact", type=Path)
    inv.add_argument("model", type=Path)
    inv.add_argument("--texts", type=int, default=600)
    for p in (fid, spd, inv):
        p.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if args.command == "fidelity":
        result = fidelity(args.checkpoint, args.data, args.models, args.limit)
    elif args.command == "speed":
        result = speed(args.artifact, args.models, args.texts, args.single, args.rounds)
    else:
        result = invariance(args.artifact, args.model, args.texts)
    text = json.dumps(result, indent=2, ensure_ascii=False, default=float)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
