"""Two builds of one model, same batches, back to back: the cost of a graph change measured finely enough to see
a few percent on a busy machine.

    python -m kolite_bench.graph_ab ARTIFACT_A ARTIFACT_B --variant int8-static --texts 2000 --out R.json

Both load with one intra-op thread and no parallel sessions, so a call runs on the calling thread and
``time.thread_time()`` counts the CPU it did (time spent preempted by other work is not counted — that is what
makes it usable on a shared machine); wall-clock is recorded too. Every batch (sorted by length, then file order)
runs on A then B, or B then A (alternating), ``--repeats`` times; the figure is the ratio of summed CPU (and wall)
per pass and repeat, with its spread. The logits of both are compared too (bitwise rows, max |Δ|, labels).
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
    from kolite_export.catalogue import data_path, read_nsmc

    parser = argparse.ArgumentParser(prog="python -m kolite_bench.graph_ab", description=__doc__.splitlines()[0])
    parser.add_argument("artifact_a")
    parser.add_argument("artifact_b")
    parser.add_argument("--variant", default="int8-static")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    texts = list(read_nsmc(data_path("nsmc")).texts[: args.texts])
    models = [kolite.load(a, variant=args.variant, threads=1, parallel=0) for a in (args.artifact_a, args.artifact_b)]
    order = np.argsort([len(t) for t in texts], kind="stable")  # by characters: near enough to tokens for batching
    size = args.batch_size
    passes = {
        "sorted": [[texts[i] for i in order[s : s + size]] for s in range(0, len(texts), size)],
        "file_order": [texts[s : s + size] for s in range(0, len(texts), size)],
        "bs1": [[t] for t in texts[:300]],
    }
    outputs: list[list[np.ndarray]] = [[], []]
    for batch in passes["file_order"]:  # warm-up, and the logits compared
        for k, model in enumerate(models):
            outputs[k].append(np.asarray(model.logits(batch, batch_size=size)))
    a, b = np.concatenate(outputs[0]), np.concatenate(outputs[1])
    equivalence = {"texts": len(a), "bitwise_identical_rows": int((a == b).all(axis=1).sum()),
                   "max_abs_diff": float(np.abs(a - b).max()),
                   "label_agreement": float((a.argmax(1) == b.argmax(1)).mean())}
    results: dict[str, Any] = {}
    for kind, batches in passes.items():
        cpu_ratio, wall_ratio = [], []
        for repeat in range(args.repeats):
            cpu, wall = [0.0, 0.0], [0.0, 0.0]
            for index, batch in enumerate(batches):
                for k in ((0, 1) if (index + repeat) % 2 == 0 else (1, 0)):
                    c0, w0 = time.thread_time(), time.perf_counter()
                    models[k].logits(batch, batch_size=size)
                    cpu[k] += time.thread_time() - c0
                    wall[k] += time.perf_counter() - w0
            cpu_ratio.append(cpu[0] / cpu[1])
            wall_ratio.append(wall[0] / wall[1])
        results[kind] = {"a_cpu_over_b_cpu": _spread(cpu_ratio), "a_wall_over_b_wall": _spread(wall_ratio),
                         "batches": len(batches)}
        print(kind, {k: f"{v['median']:.3f} ({v['min']:.3f}–{v['max']:.3f})" for k, v in results[kind].items()
                     if isinstance(v, dict)}, flush=True)
    report = {"run_id": f"graph-ab-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}",
              "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "a": args.artifact_a, "b": args.artifact_b, "variant": args.variant, "texts": len(texts),
              "load_avg_1m_end": round(os.getloadavg()[0], 2), "logical_cores": os.cpu_count(),
              "equivalence": equivalence, "ratios": results}
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps(equivalence))
    return 0


def _spread(values: list[float]) -> dict[str, Any]:
    return {"rounds": [round(v, 4) for v in values], "median": float(np.median(values)), "min": min(values),
            "max": max(values)}


if __name__ == "__main__":
    raise SystemExit(main())
