"""The speed comparison in rounds: every contender alone in a fresh process, in rotated order, on the same texts.

A round starts one worker per contender, one after another, so nothing else runs in the harness meanwhile (no
other runtime's spinning threads on the cores). The order rotates by one contender per round, so none always follows
the same neighbour. In its fresh process a contender first times batch 1 over the latency texts, then the two
throughput passes over this round's group of texts: the same length-sorted batches and the same file-order batches
for every contender (the sorted ones are cut by kolite's own planner, ``kolite.batching.plan_batches``, on kolite's
token counts). Which pass goes first alternates by round. Each round's numbers are kept, and the report gives their
median with the spread, so a runtime that flips between a fast and a slow state shows it.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PASS_KINDS", "group_indices", "plan_passes", "rotated", "run_rounds", "summarize_rounds"]

PASS_KINDS = ("sorted", "file_order")


def rotated(names: Sequence[str], round_index: int) -> list[str]:
    """``names`` rotated left by ``round_index``: round 0 runs them as given, round 1 starts with the second..."""
    if not names:
        return []
    shift = round_index % len(names)
    return [*names[shift:], *names[:shift]]


def group_indices(n_texts: int, group_size: int, round_index: int) -> list[int]:
    """Round ``round_index``'s texts: the next ``group_size`` consecutive texts (wrapping), so rounds cover different
    texts and every contender gets the same ones in the same round."""
    size = min(group_size, n_texts)
    start = (round_index * size) % n_texts
    return [(start + i) % n_texts for i in range(size)]


def plan_passes(indices: list[int], lengths: Sequence[int], batch_size: int, round_index: int) -> list[dict]:
    """The sorted and file-order passes over ``indices`` (``lengths[i]``: kolite's token count of text i), as
    batches of text indices; the sorted pass goes first in even rounds."""
    from kolite.batching import plan_batches

    group_lengths = [lengths[i] for i in indices]
    by_length = [[indices[int(j)] for j in call] for call in plan_batches(group_lengths, batch_size)]
    in_order = [indices[start : start + batch_size] for start in range(0, len(indices), batch_size)]
    passes = [{"kind": "sorted", "batches": by_length}, {"kind": "file_order", "batches": in_order}]
    return passes if round_index % 2 == 0 else passes[::-1]


def run_rounds(
    names: list[str], jobs: dict[str, dict[str, Any]], rounds: int, texts: dict[str, Any], workdir: Path
) -> dict[str, list[dict[str, Any]]]:
    """Run ``rounds`` rounds of ``names``; ``jobs[name]`` is the worker job without its passes (its ``score`` part
    runs in the first round only). ``texts`` holds ``n``, ``group_size``, ``batch_size`` and ``lengths``. A round
    already on disk (``--resume``) is reused; a contender that fails leaves the later rounds with its error."""
    from kolite_bench.env import load_average, machine_cpu_s, other_work
    from kolite_bench.subprocesses import WorkerError, run_worker

    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    failed: dict[str, str] = {}
    for r in range(rounds):
        indices = group_indices(texts["n"], texts["group_size"], r)
        passes = plan_passes(indices, texts["lengths"], texts["batch_size"], r)
        tokens = int(sum(texts["lengths"][i] for i in indices))
        for position, name in enumerate(rotated([n for n in names if n not in failed], r)):
            saved = workdir / f"{name}.round{r}.json"
            if saved.is_file():
                results[name].append(json.loads(saved.read_text(encoding="utf-8")))
                continue
            extra = ", then the sweep and the whole-set pass" if r == 0 and "score" in jobs[name] else ""
            print(f"[kolite bench] round {r + 1}/{rounds}: {name} (bs1, then {passes[0]['kind']} and"
                  f" {passes[1]['kind']} batches of {len(indices)} texts{extra})", file=sys.stderr, flush=True)
            before, machine_before, own_before = load_average(), machine_cpu_s(), _children_cpu_s()
            started = time.monotonic()
            try:
                job = {key: value for key, value in jobs[name].items() if key != "score" or r == 0}
                result = run_worker(workdir, f"{name}.round{r}", {**job, "passes": passes}, job["spec"]["threads"])
            except (WorkerError, OSError) as exc:
                failed[name] = str(exc)
                continue
            wall = time.monotonic() - started
            others = other_work(machine_before, machine_cpu_s(), _children_cpu_s() - own_before, wall)
            result.update({"round": r, "position": position, "tokens": tokens,
                           "load_average": {"before": before, "after": load_average()}, "other_work": others})
            saved.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
            results[name].append(result)
    return {**results, **{name: [{"error": error}] for name, error in failed.items()}}


def _children_cpu_s() -> float:
    """User + system CPU of this process's finished children (the round workers, each waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _spread(values: list[float]) -> dict[str, Any]:
    return {"median": float(np.median(values)), "min": float(min(values)), "max": float(max(values)),
            "rounds": [float(v) for v in values]}


def summarize_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One contender's rounds → bs1 percentiles per round (median over rounds as the headline, min–max as the
    spread) and each pass's texts/s per round (median and spread), with tokens and seconds for the GEMM rate."""
    latency = [r["latency_bs1"] for r in rounds]
    per_round = {key: [lat["ms"][key] for lat in latency] for key in ("p50", "p95", "p99", "mean")}
    summary: dict[str, Any] = {
        "latency_bs1": {
            "n_texts": latency[0]["n_texts"], "repeats": latency[0]["repeats"], "warmup": latency[0]["warmup"],
            "rounds": len(rounds), "ms": {key: float(np.median(values)) for key, values in per_round.items()},
            "spread": {key: _spread(values) for key, values in per_round.items()},
            "samples_ms": [lat["samples_ms"] for lat in latency],
        },
        "throughput_rounds": {},
    }
    for kind in PASS_KINDS:
        runs = [r["passes"][kind] for r in rounds if kind in r.get("passes", {})]
        if runs:
            summary["throughput_rounds"][kind] = {
                **_spread([run["texts_per_s"] for run in runs]), "texts_per_s": float(
                    np.median([run["texts_per_s"] for run in runs])),
                "n_texts": [run["n_texts"] for run in runs], "seconds": [run["seconds"] for run in runs],
                "tokens": [r["tokens"] for r in rounds if kind in r.get("passes", {})],
            }
    summary["round_order"] = [{"round": r["round"], "position": r["position"], "load_average": r["load_average"],
                               "other_work": r.get("other_work")} for r in rounds]
    return summary
