"""The fidelity guard's part of the report: each ``kolite-<variant>-guarded`` contender beside the same variant
unguarded — agreement with the original both ways, the share of rows the guard re-ran in the float graph, and the
guard's cost as per-round speed ratios (the same texts, the two contenders minutes apart in one run).

Issue 20's bars: guarded sorted batch-32 texts/s ≥ 0.90× unguarded, file order ≥ 0.85×, bs1 p50 ≤ 1.10× (NER:
sorted ≥ 0.75×)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kolite_bench.config import GUARDED_SUFFIX

__all__ = ["GUARD_TARGETS", "guard_ratios", "render_guard"]

# (metric, bar, direction): texts/s ratios must reach the bar, the bs1 p50 ratio (guarded time / unguarded) stay under.
GUARD_TARGETS = {"text-classification": {"sorted": 0.90, "file_order": 0.85, "bs1_p50": 1.10},
                 "token-classification": {"sorted": 0.75}}


def _pairs(results: dict[str, Any]) -> list[tuple[str, str]]:
    names = results["contenders"]
    return [(name, name.removesuffix(GUARDED_SUFFIX)) for name in names
            if name.endswith(GUARDED_SUFFIX) and name.removesuffix(GUARDED_SUFFIX) in names]


def _spread(ratios: list[float]) -> dict[str, Any] | None:
    if not ratios:
        return None
    return {"rounds": [round(r, 3) for r in ratios], "median": float(np.median(ratios)), "min": min(ratios),
            "max": max(ratios)}


def guard_ratios(results: dict[str, Any], guarded: str, plain: str) -> dict[str, Any]:
    """Per round: guarded texts/s ÷ unguarded texts/s for each batch pass (< 1: the guard costs that share), and
    guarded bs1 p50 ÷ unguarded (> 1: slower); with median, min and max."""
    mine, base = results["contenders"][guarded], results["contenders"][plain]
    if "error" in mine or "error" in base:
        return {}
    out: dict[str, Any] = {}
    for kind in ("sorted", "file_order"):
        own = mine.get("throughput_rounds", {}).get(kind, {}).get("rounds", [])
        ref = base.get("throughput_rounds", {}).get(kind, {}).get("rounds", [])
        out[kind] = _spread([g / u for g, u in zip(own, ref, strict=False) if u])
    own = mine["latency_bs1"]["spread"]["p50"]["rounds"]
    ref = base["latency_bs1"]["spread"]["p50"]["rounds"]
    out["bs1_p50"] = _spread([g / u for g, u in zip(own, ref, strict=False) if u])
    counters = mine.get("throughput", {}).get("counters") or {}
    checked = counters.get("rows_checked")
    out["rerun_fraction"] = counters["rows_rerun"] / checked if checked else None
    return out


def _agreement(result: dict[str, Any]) -> float | None:
    return (result.get("scores") or {}).get("agreement")


def render_guard(results: dict[str, Any]) -> list[str]:
    """The guard table, or nothing when the run timed no guarded contender."""
    pairs = [(g, p) for g, p in _pairs(results) if "error" not in results["contenders"][g]]
    if not pairs:
        return []
    task = results["model"]["task"]
    bars = GUARD_TARGETS.get(task, {})
    what = "entity agreement F1" if task == "token-classification" else "label agreement"
    rows = ["", "#### Fidelity guard: the same variant with its guard off and on", "",
            f"| variant | τ | {what}, unguarded | guarded | rows re-run (whole set) | sorted × unguarded, per round |"
            " file order × unguarded | bs1 p50 × unguarded | bars met |",
            "|---|---:|---:|---:|---:|---|---|---|---|"]
    for guarded, plain in pairs:
        ratios = results.get("guard_ratios", {}).get(guarded) or guard_ratios(results, guarded, plain)
        tau = (results["contenders"][guarded].get("describe", {}).get("guard") or {}).get("tau")
        cells = [plain.removeprefix("kolite-"), "–" if tau is None else f"{tau:.3f}"]
        for name in (plain, guarded):
            value = _agreement(results["contenders"][name])
            cells.append("–" if value is None else f"{value * 100:.2f} %")
        fraction = ratios.get("rerun_fraction")
        cells.append("–" if fraction is None else f"{fraction * 100:.2f} %")
        verdicts = []
        for kind in ("sorted", "file_order", "bs1_p50"):
            spread = ratios.get(kind)
            if not spread:
                cells.append("–")
                continue
            cells.append(f"{spread['median']:.2f}× ({' / '.join(f'{r:.2f}' for r in spread['rounds'])})")
            if kind in bars:
                met = spread["median"] <= bars[kind] if kind == "bs1_p50" else spread["median"] >= bars[kind]
                verdicts.append(f"{kind} {'≤' if kind == 'bs1_p50' else '≥'} {bars[kind]:g}: {'yes' if met else 'no'}")
        cells.append("; ".join(verdicts) or "–")
        rows.append("| " + " | ".join(cells) + " |")
    rows += ["", "Ratios are medians of per-round ratios (each round runs both contenders alone, same texts); the "
             "re-run share is over the whole-set pass. Agreement is with the original's labels (NER: entity F1 "
             "against the PyTorch pipeline, `simple` aggregation)."]
    return rows
