"""NER int8 error curve: float nodes kept (ranked by the int8-vs-float logit error they cause) vs the fidelity guard's
τ, the share of sentences it re-runs, and speed (docs/guides/fidelity.md, "Shrinking the NER int8 error").

    flock /tmp/kolite-cpu.lock python -m kolite_bench.ner_error_curve /work/scratch-ner/004 \
        /work/shared/standins/koelectra-small-v3-modu-ner --json benchmarks/results/ner-error-curve-004.json

Sentences (KLUE-NER dev, all pairwise disjoint and none a gate or calibration text): the ranking rows the greedy
search (``kolite_export.error_ranking``) runs on; the rows τ is measured on — export's own held-out texts and
function (``guard_threshold.guard_texts`` / ``measure_guard``: τ on decision gaps, τ_pooled per logit); and the
rows the re-run fraction is counted on, both token-only (``kolite.guard.decision_margins`` < τ) and as served under
each aggregation (the runtime's ``FidelityGuard.apply`` with the model's own ``guard_views``: the entity-aware
rule). Graphs with k nodes in float are
spliced (``GraphSplicer.with_float``: logits of a rebuild with ``exclude_nodes``, tests/export).

Speed is the graph's own: one intra-op thread, ``time.thread_time()`` (CPU the call did; preemption by other work on
a shared machine is not counted), length-sorted batches of 32, every graph on every batch in rotating order, per
repeat. The guarded projection is exact for graph time: a batch costs T_k + r·T_float, so guarded speed relative
to unguarded k=0 is (T_0/T_k) / (1 + r · T_float/T_k). Tokenization and decode (same for every k) are not counted.
"""

from __future__ import annotations

import argparse
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

import numpy as np

__all__ = ["main", "rerun_fractions", "sentence_sets", "table"]

KS = (0, 1, 2, 4, 8, 12)
TAUS = (0.01, 0.05, 0.1, 0.2)  # re-run fractions also recorded at these τ (same outputs, no extra graph run)


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def sentence_sets(manifest: Any, shared: str | None, rank: int, rerun: int, speed: int) -> dict[str, Any]:
    """Export's τ texts, and disjoint re-run and ranking rows from what validation, calibration and τ leave."""
    from kolite_export.calibration import calibration_texts
    from kolite_export.catalogue import spread
    from kolite_export.guard_threshold import DEFAULT_GUARD_TEXTS, guard_texts
    from kolite_export.validation_data import load_validation_set

    data_spec = manifest.validation["data"].split(":")[0]
    validation = load_validation_set(data_spec, manifest.validation["texts"], shared)
    calibration = calibration_texts(data_spec, validation, 512, shared)
    source, tau_texts = guard_texts(data_spec, validation, calibration, DEFAULT_GUARD_TEXTS[manifest.task], shared)
    full = load_validation_set(data_spec, None, shared)
    taken = set(validation.texts) | set(calibration.texts) | set(tau_texts)
    rest = [t for t in full.texts if t.strip() and t not in taken]
    rerun_texts = tuple(spread(rest, rerun))
    picked = set(rerun_texts)
    rank_texts = tuple(spread([t for t in rest if t not in picked], rank))
    return {"data": full.name, "tau_source": source, "tau": tau_texts, "rerun": rerun_texts, "rank": rank_texts,
            "speed": tuple(spread(list(full.texts), speed)), "calibration": calibration}


def _scope(checkpoint_dir: Path, artifact: Path, workdir: Path, calibration: Any) -> Any:
    """int8-static's quantized scope (the float graph its nodes come from) rebuilt beside a copy of the artifact's
    fp32 graph, as the export built it (the export deletes it with its staging folder)."""
    from kolite_export.cpu import detect_cpu
    from kolite_export.layouts import load_checkpoint
    from kolite_export.variants import VARIANTS, BuildContext

    ctx = BuildContext(load_checkpoint(checkpoint_dir), workdir, detect_cpu(), calibration.texts, calibration.source)
    shutil.copyfile(artifact / "model.fp32.onnx", ctx.fp32_path)
    return VARIANTS["int8-static"].quantized_scope(ctx)


AGGREGATIONS = ("none", "simple", "first", "average", "max")


def rerun_fractions(model: Any, graph: Path, texts: tuple[str, ...], guard: dict[str, Any], pad: int) -> dict[str, Any]:
    """Re-run fractions on ``texts`` with export's record (τ and τ_pooled): token margins alone, and as the runtime
    serves each aggregation (``FidelityGuard.apply`` with the model's own ``guard_views``, the entity-aware rule);
    and token-only / ``simple`` at smaller τ (what any further shrinking of the error could buy at most)."""
    import dataclasses

    from kolite.guard import FidelityGuard, GuardRecord, decision_margins
    from kolite_export.validation import served_outputs

    encoded = model.encode(list(texts), model.options(aggregation="simple"))
    outputs = served_outputs(graph, tuple(tuple(s) for s in encoded.sequences), pad)
    margins = decision_margins(outputs)

    def served(record: GuardRecord, aggregation: str) -> float:
        views = model.guard_views(dataclasses.replace(encoded, aggregations=(aggregation,) * len(encoded)))
        guard = FidelityGuard(record, float_session=None)
        guard.apply(encoded.sequences, outputs, lambda rows: [np.zeros(1)] * len(rows), views=views)
        return guard.rows_rerun / guard.rows_checked

    record = GuardRecord(guard["tau"], "fp32-opt", tau_pooled=guard["tau_pooled"])
    by_tau = {str(t): {"token_only": float((margins < t).mean()),
                       "simple": served(GuardRecord(t, "fp32-opt", tau_pooled=record.pooled_tau), "simple")}
              for t in TAUS}
    return {"token_only": float((margins < record.tau).mean()),
            "served": {aggregation: served(record, aggregation) for aggregation in AGGREGATIONS}, "by_tau": by_tau}


def _speed(graphs: dict[str, Path], sequences: list[tuple[int, ...]], pad: int, repeats: int) -> dict[str, Any]:
    """Summed thread CPU per graph and repeat over length-sorted batches of 32, graphs in rotating order."""
    from kolite.batching import pad_batch
    from kolite.session import cpu_session

    order = np.argsort([len(s) for s in sequences], kind="stable")
    batches = [pad_batch([sequences[i] for i in order[s : s + 32]], pad) for s in range(0, len(order), 32)]
    sessions = {name: cpu_session(path, threads=1) for name, path in graphs.items()}
    inputs = {name: {i.name for i in session.get_inputs()} for name, session in sessions.items()}
    for batch in batches:  # the runtime feeds zeros where a graph takes token types (kolite.session)
        batch.setdefault("token_type_ids", np.zeros_like(batch["input_ids"]))
    names = list(graphs)
    for name in names:  # warm-up
        sessions[name].run(None, {k: v for k, v in batches[-1].items() if k in inputs[name]})
    seconds = {name: [0.0] * repeats for name in names}
    for repeat in range(repeats):
        for index, batch in enumerate(batches):
            shift = (index + repeat) % len(names)
            for name in names[shift:] + names[:shift]:
                feeds = {k: v for k, v in batch.items() if k in inputs[name]}
                start = time.thread_time()
                sessions[name].run(None, feeds)
                seconds[name][repeat] += time.thread_time() - start
    return {"batches": len(batches), "repeats": repeats, "thread_cpu_s": seconds}


def curve(artifact: Path, checkpoint_dir: Path, workdir: Path, shared: str | None, ks: tuple[int, ...],
          rank: int, rerun: int, speed: int, repeats: int) -> dict[str, Any]:
    import kolite
    from kolite_export.error_ranking import greedy_float_nodes, logit_error
    from kolite_export.float_swap import GraphSplicer
    from kolite_export.guard_threshold import measure_guard
    from kolite_export.validation import runtime_sequences, served_outputs

    manifest = kolite.load_manifest(artifact)
    pad = manifest.pad_token_id
    sets = sentence_sets(manifest, shared, rank, rerun, speed)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    _say("rebuilding int8-static's quantized scope")
    scope = _scope(checkpoint_dir, artifact, workdir, sets["calibration"])
    shutil.copyfile(artifact / "model.int8-static.onnx", workdir / "int8.onnx")
    splicer = GraphSplicer.open(workdir / "int8.onnx", scope.graph, scope.op_types)
    float_graph = artifact / "model.fp32-opt.onnx"  # the guard's fallback: τ is measured against it
    tokenizer = artifact / manifest.tokenizer.file
    rank_seqs = runtime_sequences(tokenizer, manifest.max_length, sets["rank"])
    rank_ref = served_outputs(float_graph, rank_seqs, pad)
    candidates = list(scope.nodes())
    started = time.perf_counter()
    base, steps = greedy_float_nodes(
        splicer, candidates, lambda g: logit_error(served_outputs(g, rank_seqs, pad), rank_ref), max(ks),
        stop_when_flat=False, progress=_say)
    search_s = time.perf_counter() - started
    chosen = [s.node for s in steps]
    graphs: dict[str, Path] = {}
    tau_seqs = runtime_sequences(tokenizer, manifest.max_length, sets["tau"])
    rows: list[dict[str, Any]] = []
    with kolite.load(artifact, variant="fp32-opt", guard=False) as model:
        for k in (k for k in ks if k <= len(chosen)):
            spliced = splicer.with_float(chosen[:k])
            assert isinstance(spliced, Path)
            graphs[f"k{k}"] = spliced.replace(workdir / f"scratch.k{k}.onnx")  # beside the weights it refers to
            guard = measure_guard(graphs[f"k{k}"], float_graph, tau_seqs, pad)
            fractions = rerun_fractions(model, graphs[f"k{k}"], sets["rerun"], guard, pad)
            weights = scope.nodes()
            rows.append({"k": k, "float_nodes": chosen[:k],
                         "float_weight_fraction": sum(weights[n] for n in chosen[:k]) / sum(weights.values()),
                         "ranking_logit_error": steps[k - 1].error if k else base, **guard,
                         "rerun_token_only": fractions["token_only"],
                         **{f"rerun_served_{a}": f for a, f in fractions["served"].items()},
                         "rerun_by_tau": fractions["by_tau"]})
            served = ", ".join(f"{a} {f:.1%}" for a, f in fractions["served"].items())
            _say(f"k={k}: tau {guard['tau']:.4f} (pooled {guard['tau_pooled']:.4f}), re-run token-only "
                 f"{fractions['token_only']:.1%}; served {served}")
        speed_seqs = [tuple(s) for s in model.encode(list(sets["speed"])).sequences]
    graphs["float"] = float_graph
    _say(f"speed: {len(graphs)} graphs x {repeats} repeats on {len(speed_seqs)} sentences")
    timing = _speed(graphs, speed_seqs, pad, repeats)
    cpu = timing["thread_cpu_s"]
    for row in rows:
        key = f"k{row['k']}"
        own = [a / b for a, b in zip(cpu["k0"], cpu[key], strict=True)]
        float_cost = [f / b for f, b in zip(cpu["float"], cpu[key], strict=True)]
        row["own_speed_vs_k0"] = _spread(own)
        row["float_cost_ratio"] = _spread(float_cost)  # T_float / T_k
        for name in ("token_only", *(f"served_{a}" for a in AGGREGATIONS)):
            r = row[f"rerun_{name}"]
            projected = [o / (1 + r * f) for o, f in zip(own, float_cost, strict=True)]
            row[f"projected_guarded_speed_{name}_vs_unguarded_k0"] = _spread(projected)
    return {"data": sets["data"], "tau_texts": {"count": len(sets["tau"]), "source": sets["tau_source"]},
            "rerun_texts": len(sets["rerun"]), "ranking_texts": len(sets["rank"]), "speed_texts": len(speed_seqs),
            "candidates": len(candidates), "search_seconds": round(search_s, 1),
            "greedy_steps": [{"node": s.node, "ranking_logit_error": s.error, "graphs_scored": s.graphs_scored}
                             for s in steps],
            "speed": {**timing, "method": "thread CPU, 1 intra-op thread, length-sorted batches of 32"},
            "rows": rows}


def table(results: dict[str, Any]) -> str:
    """The curve as a markdown table with its run line (docs/guides/fidelity.md renders it from the results file)."""
    def pct(value: float) -> str:
        return f"{value:.1%}".replace("%", " %")

    head = ("| float nodes k | their weights | τ (gap p99.99 / max) | τ pooled | flipped unguarded | re-run: none / "
            "simple / first / average / max | own speed vs k=0 | T_float / T_k | guarded speed: simple / first |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        own, cost = row["own_speed_vs_k0"], row["float_cost_ratio"]
        served = " / ".join(pct(row[f"rerun_served_{a}"]) for a in AGGREGATIONS)
        guarded = " / ".join(f"{row[f'projected_guarded_speed_served_{a}_vs_unguarded_k0']['median']:.2f}"
                             for a in ("simple", "first"))
        lines.append(
            f"| {row['k']} | {pct(row['float_weight_fraction'])} | {row['tau']:.3f} ({row['quantile_gap_error']:.3f} / "
            f"{row['max_gap_error']:.3f}) | {row['tau_pooled']:.3f} | {row['unguarded_flips']} | {served} | "
            f"{own['median']:.3f} ({own['min']:.3f}–{own['max']:.3f}) | {cost['median']:.2f} | {guarded} |")
    machine, before, after = results["machine"], results["load_average_before"], results["load_average_after"]
    lines.append(f"\nrun {results['run_id']}, {machine['cpu']} ({machine['cpus']} vCPUs), commit {machine['commit']}, "
                 f"load average {before[0]} at start, {after[0]} at end; τ on {results['tau_texts']['count']:,} "
                 f"sentences, re-runs on {results['rerun_texts']:,}, speed on {results['speed_texts']:,}")
    return "\n".join(lines)


def _spread(values: list[float]) -> dict[str, Any]:
    return {"median": float(np.median(values)), "min": float(min(values)), "max": float(max(values)),
            "rounds": [round(v, 4) for v in values]}


def main(argv: list[str] | None = None) -> int:
    from kolite_bench.env import cpu_model, load_average

    parser = argparse.ArgumentParser(prog="python -m kolite_bench.ner_error_curve", description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--shared", default=os.environ.get("KOLITE_SHARED"))
    parser.add_argument("--ks", default=",".join(map(str, KS)))
    parser.add_argument("--rank-texts", type=int, default=256)
    parser.add_argument("--rerun-texts", type=int, default=1000)
    parser.add_argument("--speed-texts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kolite-ner-error-curve"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    started = datetime.now(timezone.utc)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    machine = {"cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version(), "commit": commit}
    load_before = load_average()
    body = curve(args.artifact, args.checkpoint, args.workdir, args.shared, tuple(int(k) for k in args.ks.split(",")),
                 args.rank_texts, args.rerun_texts, args.speed_texts, args.repeats)
    result = {"run_id": f"ner-error-curve-{started.strftime('%Y%m%dT%H%M%SZ')}",
              "date": started.isoformat(timespec="seconds"), "artifact": str(args.artifact),
              "machine": machine, "load_average_before": load_before, "load_average_after": load_average(), **body}
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
