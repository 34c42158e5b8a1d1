"""PNG plots of one results file: latency distributions per round, batch-32 throughput per pass (median and spread
over rounds), throughput vs batch size, accuracy vs size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_plots"]


def _ok(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in results["contenders"].items() if "error" not in v}


def _title(results: dict[str, Any], what: str) -> str:
    model = results["model"]
    tag = " (stand-in)" if model["stand_in"] else ""
    return f"{model['seed_id']}{tag}: {what} — {results['environment']['threads']} threads"


def _latency(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    ok = {n: r for n, r in _ok(results).items() if "latency_bs1" in r}
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(ok) + 2))
    names = list(ok)
    pooled = [[x for round_samples in ok[n]["latency_bs1"]["samples_ms"] for x in round_samples] for n in names]
    ax.boxplot(pooled, vert=False, tick_labels=names, whis=(1, 99), showfliers=False)
    for row, name in enumerate(names, start=1):  # one dot per round: a runtime that flips state shows as a gap
        per_round = ok[name]["latency_bs1"]["spread"]["p50"]["rounds"]
        ax.scatter(per_round, [row] * len(per_round), marker="|", s=200, color="tab:red", zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 latency per call, ms (log; box: all rounds, whiskers p1–p99; red: each round's p50)")
    ax.set_title(_title(results, "latency distribution"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _rounds(results: dict[str, Any], path: Path) -> None:
    """Batch-32 texts/s, sorted and file order: median over rounds, whiskers min–max."""
    import matplotlib.pyplot as plt
    import numpy as np

    ok = {n: r for n, r in _ok(results).items() if r.get("throughput_rounds")}
    names = list(ok)
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(ok) + 2))
    rows = np.arange(len(names))
    for offset, kind in ((-0.2, "sorted"), (0.2, "file_order")):
        runs = [ok[n]["throughput_rounds"].get(kind) for n in names]
        medians = [run["median"] if run else 0 for run in runs]
        errors = [[run["median"] - run["min"] if run else 0 for run in runs],
                  [run["max"] - run["median"] if run else 0 for run in runs]]
        ax.barh(rows + offset, medians, height=0.4, xerr=errors, label=kind.replace("_", " "), capsize=3)
    ax.set_yticks(rows, names)
    ax.set_xlabel("texts/s at batch 32 (median over rounds; whiskers: slowest and fastest round)")
    ax.set_title(_title(results, "batch-32 throughput"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sweep(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, r in _ok(results).items():
        rows = r["sweep"]
        ax.plot([x["batch_size"] for x in rows], [x["texts_per_s"] for x in rows], marker="o", label=name)
    limit = ((results.get("physical_limit") or {}).get("limit") or {}).get("texts_per_s")
    if limit:
        ax.axhline(limit, color="grey", linestyle="--", label="int8 GEMM limit")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("texts/s")
    ax.set_title(_title(results, "throughput vs batch size"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _accuracy(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    ner = results["model"]["task"] == "token-classification"
    key = "entity_f1" if ner else "accuracy"
    if not results["dataset"]["labelled"]:
        key = "agreement"
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, r in _ok(results).items():
        value = r["scores"].get(key)
        if value is None:
            continue
        size_mb = r["model_bytes"] / 2**20
        ax.scatter(size_mb, value)
        ax.annotate(name, (size_mb, value), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("model file size, MB")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(_title(results, f"{key.replace('_', ' ')} vs size"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(results: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"latency": out_dir / f"{stem}-latency.png", "throughput": out_dir / f"{stem}-throughput.png",
             "rounds": out_dir / f"{stem}-bs32.png", "accuracy": out_dir / f"{stem}-accuracy-size.png"}
    if _ok(results):
        _latency(results, paths["latency"])
        _sweep(results, paths["throughput"])
        _rounds(results, paths["rounds"])
        _accuracy(results, paths["accuracy"])
    return [p for p in paths.values() if p.is_file()]
