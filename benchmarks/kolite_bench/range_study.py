"""int8-static activation ranges vs the fidelity guard: for each range method, the graph export would build with it,
and the τ, τ_pooled and re-run fraction export's own ``measure_guard`` gives it on export's held-out texts (and, for
NER, the share of sentences the runtime re-runs under each aggregation). Issue 20 item 4 asks whether another
recipe shrinks the error the guard pays for; the recipe's default (percentile 99.999) was picked on label agreement.

    flock /tmp/kolite-cpu.lock python -m kolite_bench.range_study artifacts/000-koelectra-small-v3-nsmc \
        ../shared/standins/koelectra-small-v3-nsmc --json benchmarks/results/range-study-000.json

Every graph is built by export's ``build_int8_static`` with the artifact's own excluded nodes and calibration texts
(``kolite_export.calibration``); only the range method and percentile change.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["main", "study", "table"]

DEFAULT_SPECS = ("percentile:99.999", "percentile:99.9999", "percentile:99.99", "minmax", "mse")


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _recipe(cpu: Any, spec: str) -> Any:
    from kolite_export.recipes import StaticScaleRecipe

    method, _, percentile = spec.partition(":")
    recipe = StaticScaleRecipe.for_cpu(cpu)
    return dataclasses.replace(recipe, range_method=method, **({"percentile": float(percentile)} if percentile else {}))


def study(artifact: Path, checkpoint_dir: Path, workdir: Path, shared: str | None, specs: tuple[str, ...]) -> dict:
    import kolite
    from kolite_export.cpu import detect_cpu
    from kolite_export.guard_threshold import measure_guard
    from kolite_export.layouts import load_checkpoint
    from kolite_export.static_int8 import build_int8_static
    from kolite_export.validation import runtime_sequences
    from kolite_export.variants import BuildContext

    from kolite_bench.ner_error_curve import rerun_fractions, sentence_sets

    manifest = kolite.load_manifest(artifact)
    ner = manifest.task == "token-classification"
    sets = sentence_sets(manifest, shared, 1, 1000 if ner else 1, 1)
    excluded = tuple(manifest.variants["int8-static"].recipe.get("nodes_to_exclude", ()))
    tau_seqs = runtime_sequences(artifact / manifest.tokenizer.file, manifest.max_length, sets["tau"])
    float_graph = artifact / "model.fp32-opt.onnx"  # the guard's fallback: τ is measured against it
    cpu = detect_cpu()
    rows = []
    for spec in specs:
        folder = workdir / spec.replace(":", "-")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        ctx = BuildContext(load_checkpoint(checkpoint_dir), folder, cpu, sets["calibration"].texts,
                           sets["calibration"].source)
        shutil.copyfile(artifact / "model.fp32.onnx", ctx.fp32_path)
        graph = folder / "model.int8-static.onnx"
        build_int8_static(ctx, graph, excluded, _recipe(cpu, spec))
        row: dict[str, Any] = {"spec": spec, **measure_guard(graph, float_graph, tau_seqs, manifest.pad_token_id)}
        if ner:
            with kolite.load(artifact, variant="fp32-opt", guard=False) as model:
                fractions = rerun_fractions(model, graph, sets["rerun"], row, manifest.pad_token_id)
            row["rerun_served"] = fractions["served"]
        _say(f"{spec}: tau {row['tau']:.4f} (pooled {row['tau_pooled']:.4f}), re-run {row['rerun_fraction']:.2%}")
        rows.append(row)
    return {"artifact": str(artifact), "task": manifest.task, "excluded_nodes": list(excluded),
            "tau_texts": {"count": len(sets["tau"]), "source": sets["tau_source"]},
            "rerun_texts": len(sets["rerun"]) if ner else 0, "rows": rows}


def table(results: dict[str, Any]) -> str:
    """One row per range method (docs/guides/fidelity.md renders it from the results file)."""
    ner = results["task"] == "token-classification"
    head = ("| activation ranges | τ (gap p99.99 / max) | τ pooled (per-logit p99.99 / max) | flipped unguarded | "
            "re-run, held-out")
    head += " | served re-run: none / simple / first / average / max |" if ner else " |"
    lines = [head, "|---|---|---|---|---|" + ("---|" if ner else "")]
    for row in results["rows"]:
        method, _, percentile = row["spec"].partition(":")
        name = f"{method} {percentile}" if percentile else method
        line = (f"| {name} | {row['tau']:.3f} ({row['quantile_gap_error']:.3f} / {row['max_gap_error']:.3f}) | "
                f"{row['tau_pooled']:.3f} ({row['quantile_abs_delta']:.3f} / {row['max_abs_delta']:.3f}) | "
                f"{row['unguarded_flips']} of {row['rows']:,} | {row['rerun_fraction']:.1%} |")
        if ner:
            line += " " + " / ".join(f"{v:.1%}" for v in row["rerun_served"].values()) + " |"
        lines.append(line.replace("%", " %"))
    machine = results["machine"]
    lines.append(f"\nrun {results['run_id']}, {machine['cpu']} ({machine['cpus']} vCPUs), commit {machine['commit']}; "
                 f"τ on {results['tau_texts']['count']:,} held-out texts ({results['tau_texts']['source']})"
                 + (f", served re-runs on {results['rerun_texts']:,} others" if ner else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from kolite_bench.env import cpu_model, load_average

    parser = argparse.ArgumentParser(prog="python -m kolite_bench.range_study", description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--shared", default=os.environ.get("KOLITE_SHARED"))
    parser.add_argument("--specs", default=",".join(DEFAULT_SPECS), help="minmax, mse or percentile:P, comma-separated")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kolite-range-study"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    started = datetime.now(timezone.utc)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    load_before = load_average()
    body = study(args.artifact, args.checkpoint, args.workdir, args.shared, tuple(args.specs.split(",")))
    result = {"run_id": f"range-study-{started.strftime('%Y%m%dT%H%M%SZ')}",
              "date": started.isoformat(timespec="seconds"),
              "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version(),
                          "commit": commit},
              "load_average_before": load_before, "load_average_after": load_average(), **body}
    text = json.dumps(result, indent=1, ensure_ascii=False)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
