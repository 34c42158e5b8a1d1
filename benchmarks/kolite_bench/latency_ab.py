"""Batch-1 latency A/B in one run: this checkout's runtime against another runtime tree (e.g. ``git worktree`` of
main), each pair in two fresh processes, the order alternating by pair.

    python -m kolite_bench.latency_ab --artifact ART --baseline-runtime /tmp/base/runtime --pairs 8 --out R.json

Each process loads the artifact as a user would (``kolite.load(ART, variant=..., threads=2)``, guard off, the
default throughput mode), calls it once per text untimed (every shape seen), then times ``--repeats`` passes of one
call per text: ``logits([text])`` for a classifier, ``tag([text], aggregation="simple")`` for a tagger. Texts: every
``--stride``-th of the artifact's benchmark set (NSMC test or KLUE-NER dev), ``--texts`` of them. The figures are
the per-pair ratios this ÷ baseline of p50, p99 and mean, and their medians; the machine's other work while each
process ran (``kolite_bench.env.other_work``) is recorded with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["main", "measure", "table"]

_METRICS = ("p50", "p99", "mean")


def measure(artifact: Path, texts: list[str], variant: str, repeats: int) -> dict[str, Any]:
    """One process's figures: load, one untimed call per text, then ``repeats`` timed passes (ms)."""
    import kolite
    import numpy as np

    model = kolite.load(artifact, variant=variant, threads=2, guard=False)
    if model.manifest.task == "token-classification":
        def call(text: str) -> object:
            return model.tag([text], aggregation="simple")
    else:
        def call(text: str) -> object:
            return model.logits([text], batch_size=1)
    for text in texts:
        call(text)
    samples = []
    for _ in range(repeats):
        for text in texts:
            start = time.perf_counter()
            call(text)
            samples.append(1000 * (time.perf_counter() - start))
    return {"runtime": str(Path(kolite.__file__).parents[1]), "p50": float(np.percentile(samples, 50)),
            "p99": float(np.percentile(samples, 99)), "mean": float(np.mean(samples)), "n": len(samples)}


def _texts(artifact: Path, count: int, stride: int) -> list[str]:
    from kolite.manifest import load_manifest
    from kolite_export.catalogue import read_dataset

    ner = load_manifest(artifact).task == "token-classification"
    data = read_dataset("klue-ner" if ner else "nsmc")  # from the shared folder (KOLITE_SHARED)
    return [t for t in data.texts[::stride] if t.strip()][:count]


def _one_process(args: argparse.Namespace, runtime: str | None, texts_file: Path) -> dict[str, Any]:
    from kolite_bench.env import machine_cpu_s, other_work

    env = dict(os.environ)
    if runtime:  # the other runtime tree first on the path: its kolite is imported
        env["PYTHONPATH"] = os.pathsep.join([runtime, env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "kolite_bench.latency_ab", "--child", str(texts_file),
               "--artifact", str(args.artifact), "--variant", args.variant, "--repeats", str(args.repeats)]
    before, started, own = machine_cpu_s(), time.perf_counter(), os.times()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"latency_ab child failed:\n{done.stderr[-2000:]}")
    after, now = os.times(), time.perf_counter()
    child_cpu = (after.children_user - own.children_user) + (after.children_system - own.children_system)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["other_work"] = other_work(before, machine_cpu_s(), child_cpu, now - started)
    return row


def table(results: dict[str, Any]) -> str:
    """Per pair: both processes' p50 / p99 / mean and the ratios; then the run line."""
    lines = ["| pair | baseline p50 / p99 / mean ms | this p50 / p99 / mean ms | this ÷ baseline p50 | p99 | mean |",
             "|---:|---|---|---:|---:|---:|"]
    for row in results["pairs"]:
        base, this = row["baseline"], row["this"]
        cells = " | ".join(f"{this[m] / base[m]:.3f}" for m in _METRICS)
        lines.append(f"| {row['pair'] + 1} | {' / '.join(f'{base[m]:.2f}' for m in _METRICS)} | "
                     f"{' / '.join(f'{this[m]:.2f}' for m in _METRICS)} | {cells} |")
    ratio, settings, machine = results["this_over_baseline"], results["settings"], results["machine"]
    others = [(row[name]["other_work"] or {}).get("cores", 0.0) for row in results["pairs"] for name in ("this",
              "baseline")]
    lines.append(
        f"\nrun {results['run_id']}: {Path(settings['artifact']).name} ({settings['variant']}), "
        f"{settings['texts']} texts × {settings['repeats']} passes per process, {len(results['pairs'])} pairs of fresh "
        f"processes, {machine.get('cpu', '?')} ({machine['logical_cores']} vCPUs), other work "
        f"{min(others):.2f}–{max(others):.2f} cores; this ÷ baseline medians: p50 {ratio['p50']['median']:.3f}, "
        f"p99 {ratio['p99']['median']:.3f}, mean {ratio['mean']['median']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kolite_bench.latency_ab", description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--baseline-runtime", help="folder holding the other kolite package")
    parser.add_argument("--variant", default="int8-static")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--stride", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # a measuring process: texts JSON file
    args = parser.parse_args(argv)
    if args.child:
        texts = json.loads(args.child.read_text(encoding="utf-8"))
        print(json.dumps(measure(args.artifact, texts, args.variant, args.repeats)))
        return 0
    if not args.baseline_runtime or not args.out:
        parser.error("--baseline-runtime and --out are required")
    from kolite_bench.env import cpu_model

    texts = _texts(args.artifact, args.texts, args.stride)
    texts_file = args.out.with_suffix(".texts.tmp.json")
    texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    contenders = {"this": None, "baseline": args.baseline_runtime}
    pairs = []
    try:
        for pair in range(args.pairs):
            row: dict[str, Any] = {"pair": pair}
            for name in list(contenders) if pair % 2 == 0 else list(contenders)[::-1]:
                row[name] = _one_process(args, contenders[name], texts_file)
            print(f"pair {pair + 1}: " + ", ".join(f"{m} {row['this'][m] / row['baseline'][m]:.3f}" for m in _METRICS),
                  flush=True)
            pairs.append(row)
    finally:
        texts_file.unlink(missing_ok=True)
    ratios = {m: [round(row["this"][m] / row["baseline"][m], 3) for row in pairs] for m in _METRICS}
    result = {
        "run_id": f"latency-ab-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "logical_cores": os.cpu_count()},
        "settings": {**{k: str(v) for k, v in vars(args).items() if k != "child"}, "texts": len(texts)},
        "pairs": pairs,
        "this_over_baseline": {m: {"rounds": r, "median": statistics.median(r)} for m, r in ratios.items()},
    }
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps(result["this_over_baseline"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
