"""The fused int8-static graph (native ``GeluQuantizeLinear``) against the unfused one: bitwise outputs and thread-CPU.

    python -m kolite_bench.native_fusion.ab ARTIFACT --data nsmc --key 000 --out benchmarks/results/native-fusion.json

Builds the library, writes ARTIFACT's fused copy (``--fused-dir``), and loads both with ``kolite.load`` (one
intra-op thread, no parallel sessions, no guard), the fused one with kolite's session options plus the library.
Same method as ``kolite_bench.graph_ab``: every batch (sorted by length, file order, then batch 1) runs on A then B
or B then A, alternating, ``--repeats`` times, timed by ``time.thread_time()`` (CPU of the calling thread, which
does all the work with one thread: time lost to other processes on a shared machine is not counted); wall-clock
is recorded too. Texts are tokenized before timing, so only graph execution is compared. The ratio is
unfused / fused: above 1 means the fused graph is faster. The JSON gets (or replaces) the entry ``--key``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    import kolite
    from kolite_export.catalogue import read_dataset

    from kolite_bench.native_fusion.build import build_library
    from kolite_bench.native_fusion.rewrite import native_session_options, write_fused_artifact

    parser = argparse.ArgumentParser(prog="python -m kolite_bench.native_fusion.ab", description=__doc__.split("\n")[0])
    parser.add_argument("artifact")
    parser.add_argument("--data", default="nsmc", help="nsmc or klue-ner (kolite_export.catalogue keys)")
    parser.add_argument("--key", required=True, help="entry name in --out (e.g. 000)")
    parser.add_argument("--fused-dir", type=Path, default=None, help="default: ARTIFACT-native beside it")
    parser.add_argument("--variant", default="int8-static")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--bs1-texts", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    library = build_library()
    fused_dir = args.fused_dir or Path(f"{Path(args.artifact).resolve()}-native")
    chains = write_fused_artifact(args.artifact, fused_dir, args.variant)
    texts = list(read_dataset(args.data).texts[: args.texts])
    common = {"variant": args.variant, "threads": 1, "parallel": 0, "guard": False}
    models = [kolite.load(args.artifact, **common),
              kolite.load(fused_dir, session_options=native_session_options(library, 1), **common)]
    size = args.batch_size
    order = np.argsort([len(t) for t in texts], kind="stable")
    passes = {
        "sorted": [[texts[i] for i in order[s : s + size]] for s in range(0, len(texts), size)],
        "file_order": [texts[s : s + size] for s in range(0, len(texts), size)],
        "bs1": [[t] for t in texts[: args.bs1_texts]],
    }
    encoded = {kind: [models[0].encode(batch) for batch in batches] for kind, batches in passes.items()}
    equivalence = _equivalence(models, encoded["file_order"], size)  # also the warm-up
    print(json.dumps(equivalence), flush=True)
    ratios: dict[str, Any] = {}
    for kind, batches in encoded.items():
        cpu_ratio, wall_ratio, cpu_seconds = [], [], []
        for repeat in range(args.repeats):
            cpu, wall = [0.0, 0.0], [0.0, 0.0]
            for index, batch in enumerate(batches):
                for k in (0, 1) if (index + repeat) % 2 == 0 else (1, 0):
                    c0, w0 = time.thread_time(), time.perf_counter()
                    models[k].run(batch, size)
                    cpu[k] += time.thread_time() - c0
                    wall[k] += time.perf_counter() - w0
            cpu_ratio.append(cpu[0] / cpu[1])
            wall_ratio.append(wall[0] / wall[1])
            cpu_seconds.append([round(c, 3) for c in cpu])
        ratios[kind] = {"unfused_cpu_over_fused_cpu": _spread(cpu_ratio),
                        "unfused_wall_over_fused_wall": _spread(wall_ratio),
                        "cpu_seconds_unfused_fused": cpu_seconds, "batches": len(batches)}
        print(kind, f"{ratios[kind]['unfused_cpu_over_fused_cpu']['median']:.4f}", cpu_ratio, flush=True)
    entry = {
        "run_id": f"native-fusion-{args.key}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": _cpu_model(), "logical_cores": os.cpu_count(), "onnxruntime": _ort_version(),
        "load_avg_start": [round(v, 2) for v in load_start], "load_avg_end": [round(v, 2) for v in os.getloadavg()],
        "artifact": str(args.artifact), "variant": args.variant, "data": args.data, "texts": len(texts),
        "batch_size": size, "bs1_texts": len(passes["bs1"]), "repeats": args.repeats,
        "fused_chains": chains, "library": library.name, "equivalence": equivalence, "ratios": ratios,
    }
    report = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    report.setdefault("runs", {})[args.key] = entry
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


def _equivalence(models: list[Any], batches: list[Any], size: int) -> dict[str, Any]:
    """Per text (classification: its logits row; NER: its [tokens, labels] block), are both graphs' outputs
    bitwise the same?"""
    texts = identical = 0
    worst = 0.0
    for batch in batches:
        a, b = (model.run(batch, size) for model in models)
        for x, y in zip(a, b, strict=True):
            x, y = np.asarray(x), np.asarray(y)
            texts += 1
            identical += int(x.shape == y.shape and np.array_equal(x.view(np.uint32), y.view(np.uint32)))
            worst = max(worst, float(np.abs(x - y).max()) if x.shape == y.shape else float("inf"))
    return {"texts": texts, "bitwise_identical_texts": identical, "max_abs_diff": worst}


def _spread(values: list[float]) -> dict[str, Any]:
    return {"rounds": [round(v, 4) for v in values], "median": round(float(np.median(values)), 4),
            "min": round(min(values), 4), "max": round(max(values), 4)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


if __name__ == "__main__":
    raise SystemExit(main())
