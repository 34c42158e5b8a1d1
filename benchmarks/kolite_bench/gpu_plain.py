"""A second, plain harness for the CUDA figures: no kolite code at all — the artifact's tokenizer.json through
``tokenizers``, sorted batches padded to their longest, one onnxruntime CUDA session with default options and
plain ``session.run`` on numpy. What kolite reports at the same batch size should be close to (or above) this."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payload", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", default="000,004")
    parser.add_argument("--variant", default="fp16")
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[32, 256])
    args = parser.parse_args()
    import onnxruntime as ort
    from tokenizers import Tokenizer

    ort.preload_dlls()  # the CUDA/cuDNN libraries of the nvidia-* wheels
    results = {}
    for seed in args.seeds.split(","):
        artifact = args.payload / seed / "artifact"
        manifest = json.loads((artifact / "manifest.json").read_text(encoding="utf-8"))
        texts = json.loads((args.payload / seed / "texts.json").read_text(encoding="utf-8"))
        tokenizer = Tokenizer.from_file(str(artifact / "tokenizer.json"))
        tokenizer.enable_truncation(manifest["max_length"])
        tokenizer.no_padding()
        ids = [e.ids for e in tokenizer.encode_batch(texts)]
        session = ort.InferenceSession(str(artifact / f"model.{args.variant}.onnx"),
                                       providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]

        def run(rows: list[list[int]], names: list[str] = names, session: ort.InferenceSession = session) -> None:
            width = max(len(r) for r in rows)
            batch = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(batch)
            for i, r in enumerate(rows):
                batch[i, : len(r)], mask[i, : len(r)] = r, 1
            feeds = {"input_ids": batch, "attention_mask": mask, "token_type_ids": np.zeros_like(batch)}
            session.run(None, {n: feeds[n] for n in names})

        order = sorted(ids, key=len, reverse=True)
        row: dict[str, float] = {}
        for size in args.batch_sizes:
            batches = [order[i : i + size] for i in range(0, len(order), size)]
            for b in batches:  # warm-up: every shape once
                run(b)
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                for b in batches:
                    run(b)
                best = min(best, time.perf_counter() - start)
            row[f"bs{size}_texts_per_s"] = len(texts) / best
        latencies = []
        for r in ids[:300]:
            run([r])
        for r in ids[:300]:
            start = time.perf_counter()
            run([r])
            latencies.append(time.perf_counter() - start)
        row["bs1_p50_ms"] = float(np.percentile(latencies, 50) * 1e3)
        row["bs1_p99_ms"] = float(np.percentile(latencies, 99) * 1e3)
        results[seed] = row
        print(seed, args.variant, {k: round(v, 2) for k, v in row.items()}, flush=True)
    args.out.write_text(json.dumps({"harness": "plain onnxruntime CUDA session, default options", "variant":
                                    args.variant, "seeds": results}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
