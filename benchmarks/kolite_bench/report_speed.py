"""The speed part of the report: the rounds table (bs1 and the batch-32 passes, with every round's number and the
ratio to OpenVINO's best int8 mode), issue 14's targets, and the physical limit (measured GEMM peak, VNNI and AMX)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kolite_bench.env import OTHER_WORK_LIMIT, shared_machine
from kolite_bench.limits import gemm_fraction, gemm_mix_ceiling

__all__ = [
    "OPENVINO",
    "busy_rounds",
    "gemm_fractions",
    "lead_table",
    "openvino_best",
    "render_limit",
    "render_speed",
    "round_ratios",
    "speed_ratios",
]

OPENVINO = ("openvino-int8-latency", "openvino-int8-throughput")
_PASSES = {"sorted": "sorted by length", "file_order": "file order"}


def _ok(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in results["contenders"].items() if "error" not in v and "latency_bs1" in v}


def _fmt(value: float | None, digits: int, suffix: str = "") -> str:
    return "–" if value is None else f"{value:,.{digits}f}{suffix}"


def _metric(result: dict[str, Any], metric: str) -> float | None:
    """``p50``/``p99`` (bs1 ms, median over rounds) or ``sorted``/``file_order`` (texts/s, median over rounds)."""
    if metric in ("p50", "p99"):
        return result.get("latency_bs1", {}).get("ms", {}).get(metric)
    return result.get("throughput_rounds", {}).get(metric, {}).get("texts_per_s")


def openvino_best(results: dict[str, Any], metric: str) -> tuple[float | None, str | None]:
    """OpenVINO's best int8 mode for ``metric`` in this run: the lowest latency or the highest throughput."""
    ok = _ok(results)
    values = [(v, name) for name in OPENVINO if name in ok and (v := _metric(ok[name], metric)) is not None]
    if not values:
        return None, None
    return (min(values) if metric in ("p50", "p99") else max(values))


def gemm_fractions(results: dict[str, Any], name: str, kind: str) -> dict[str, float | None]:
    """Median over rounds of the useful-GEMM share of each peak (measured, VNNI, AMX) a pass reached."""
    limit = results.get("physical_limit") or {}
    rounds = (results["contenders"].get(name) or {}).get("throughput_rounds", {}).get(kind)
    ops = (limit.get("limit") or {}).get("ops_per_token")
    peaks = {"measured": (limit.get("gemm") or {}).get("int8_peak_gops"),
             "vnni": (limit.get("theoretical") or {}).get("vnni_peak_gops"),
             "amx": (limit.get("theoretical") or {}).get("amx_peak_gops")}
    out: dict[str, float | None] = {}
    for key, peak in peaks.items():
        if not (rounds and ops and peak):
            out[key] = None
            continue
        shares = [gemm_fraction(ops, t, s, peak) for t, s in zip(rounds["tokens"], rounds["seconds"], strict=True)]
        out[key] = float(np.median([x for x in shares if x is not None]))
    return out


def speed_ratios(results: dict[str, Any], name: str) -> dict[str, float | None]:
    """``name`` against OpenVINO's best int8 mode and optimum (> 1: ``name`` is faster; p99 ratio < 1 is better)."""
    r = _ok(results).get(name) or {}

    def faster(metric: str, other: float | None) -> float | None:
        mine = _metric(r, metric)
        if not mine or not other:
            return None
        return other / mine if metric in ("p50", "p99") else mine / other

    optimum = _ok(results).get("optimum-int8") or {}
    p99, ov_p99 = _metric(r, "p99"), openvino_best(results, "p99")[0]
    return {
        "bs1_vs_openvino": faster("p50", openvino_best(results, "p50")[0]),
        "bs1_vs_optimum": faster("p50", _metric(optimum, "p50")),
        "p99_over_openvino": p99 / ov_p99 if p99 and ov_p99 else None,
        "sorted_vs_openvino": faster("sorted", openvino_best(results, "sorted")[0]),
        "file_order_vs_openvino": faster("file_order", openvino_best(results, "file_order")[0]),
        "sorted_gemm_fraction": gemm_fractions(results, name, "sorted")["measured"],
        "sorted_vnni_fraction": gemm_fractions(results, name, "sorted")["vnni"],
    }


def round_ratios(results: dict[str, Any], name: str) -> dict[str, dict[str, Any] | None]:
    """``name`` against OpenVINO's best int8 mode *round by round* (the same texts, minutes apart): texts/s ratio
    per batch pass and OpenVINO p50 / ``name`` p50 at batch 1 (> 1: ``name`` is faster), with median, min and max.
    A ratio of medians can hide that the rounds disagree; these are the numbers to quote."""
    ok = _ok(results)
    mine = ok.get(name)
    peers = [ok[n] for n in OPENVINO if n in ok]
    if mine is None or not peers:
        return {}
    out: dict[str, dict[str, Any] | None] = {}
    for kind in _PASSES:
        own = mine.get("throughput_rounds", {}).get(kind, {}).get("rounds", [])
        theirs = [p.get("throughput_rounds", {}).get(kind, {}).get("rounds", []) for p in peers]
        best = [max(values) for values in zip(*theirs, strict=False)]
        out[kind] = _ratio_spread([m / b for m, b in zip(own, best, strict=False)])
    own = mine["latency_bs1"]["spread"]["p50"]["rounds"]
    best = [min(values) for values in zip(*[p["latency_bs1"]["spread"]["p50"]["rounds"] for p in peers], strict=False)]
    out["bs1_p50"] = _ratio_spread([b / m for m, b in zip(own, best, strict=False)])
    return out


def _ratio_spread(ratios: list[float]) -> dict[str, Any] | None:
    if not ratios:
        return None
    return {"rounds": [round(r, 3) for r in ratios], "median": float(np.median(ratios)), "min": min(ratios),
            "max": max(ratios)}


def busy_rounds(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The round workers that shared the machine: other processes kept more than ``OTHER_WORK_LIMIT`` cores busy,
    or the hypervisor stole as much, while the worker ran (``kolite_bench.env.other_work``). Results from before
    that was measured fall back to the 1-min load average above the logical cores at the worker's start, which also
    counts the bench's own previous worker. Flagged, not dropped."""
    cores = results.get("environment", {}).get("logical_cores") or 1
    busy = []
    for name, r in _ok(results).items():
        for step in r.get("round_order", []):
            others = step.get("other_work")
            load = step["load_average"]["before"][0]
            if others is not None:
                if shared_machine(others):
                    busy.append({"contender": name, "round": step["round"], "load1": load, **others})
            elif load > cores:
                busy.append({"contender": name, "round": step["round"], "load1": load})
    return busy


def _rounds(values: list[float], digits: int) -> str:
    return " / ".join(f"{v:,.{digits}f}" for v in values)


def render_speed(results: dict[str, Any]) -> list[str]:
    ok = _ok(results)
    if not ok:
        return []
    settings = results["settings"]
    rows = [
        "", f"#### Speed: {settings.get('rounds', 1)} rounds, each contender alone in a fresh process, order rotated",
        "",
        "| contender | bs1 p50 ms | p50 per round | bs1 p99 ms | p99 per round | × OpenVINO best (p50) |"
        " bs32 sorted texts/s | per round | × OpenVINO best | bs32 file order texts/s | per round |"
        " × OpenVINO best | sorted: % of measured GEMM peak | % of VNNI peak |",
        "|---|" + "---:|---|" * 2 + "---:|" + "---:|---|---:|" * 2 + "---:|---:|",
    ]
    for name, r in ok.items():
        spread, passes = r["latency_bs1"]["spread"], r.get("throughput_rounds", {})
        ratio = speed_ratios(results, name)
        fractions = gemm_fractions(results, name, "sorted")
        cells = [name, _fmt(_metric(r, "p50"), 2), _rounds(spread["p50"]["rounds"], 2), _fmt(_metric(r, "p99"), 2),
                 _rounds(spread["p99"]["rounds"], 2), _fmt(ratio["bs1_vs_openvino"], 2, "×")]
        for kind in _PASSES:
            run = passes.get(kind)
            cells += [_fmt(_metric(r, kind), 1), _rounds(run["rounds"], 0) if run else "–",
                      _fmt(ratio[f"{kind}_vs_openvino"], 2, "×")]
        cells += [_fmt(fractions["measured"] and fractions["measured"] * 100, 1, "%"),
                  _fmt(fractions["vnni"] and fractions["vnni"] * 100, 1, "%")]
        rows.append("| " + " | ".join(cells) + " |")
    sorted_runs = [r.get("throughput_rounds", {}).get("sorted", {}) for r in ok.values()]
    n_texts = sorted({n for run in sorted_runs for n in run.get("n_texts", [])})
    lat = next(iter(ok.values()))["latency_bs1"]
    rows += [
        "",
        f"- bs1: {lat['n_texts']} texts spread over the set, {settings.get('warmup', 1)} untimed pass(es), then"
        f" {lat['repeats']} timed passes; every call is a sample. Headline = median over rounds; the per-round"
        " columns show a runtime that changes state between rounds.",
        f"- Batch 32: each round takes the next group of {', '.join(map(str, n_texts))} texts; every contender runs"
        " the same batches (sorted: cut by kolite's planner on kolite's token counts; file order: consecutive), one"
        " untimed run of the pass first. kolite gets the sorted pass as one `logits`/`tag` call (its planner forms"
        " the same batches) and the file-order pass as one call per batch.",
        "- × OpenVINO best: against the faster of OpenVINO's two modes for that column (> 1: faster than OpenVINO);"
        " GEMM %: useful GEMM work (real tokens, no padding) per second over the peak (median over rounds).",
    ]
    for name in ok:
        if name.startswith("kolite") and (ratios := round_ratios(results, name)):
            parts = [f"{label} {_rounds(ratio['rounds'], 2)} (median {ratio['median']:.2f}×)"
                     for label, ratio in (("sorted", ratios.get("sorted")), ("file order", ratios.get("file_order")),
                                          ("bs1 p50", ratios.get("bs1_p50"))) if ratio]
            rows.append(f"- {name} ÷ OpenVINO best, round by round: " + "; ".join(parts) + ".")
    steps = [step for r in ok.values() for step in r.get("round_order", [])]
    measured = [step["other_work"] for step in steps if step.get("other_work")]
    if busy := busy_rounds(results):
        if measured:
            worst = max(max(b.get("cores", 0.0), b.get("steal_cores", 0.0)) for b in busy)
            rows.append(f"- **Busy machine**: {len(busy)} round worker(s) shared the machine with other work or"
                        f" hypervisor steal above {OTHER_WORK_LIMIT} cores (up to {worst:.2f}); their figures"
                        " competed with it. Compare ratios within this run only.")
        else:
            rows.append(f"- **Busy machine**: {len(busy)} round worker(s) started with a 1-min load above the"
                        f" {results['environment']['logical_cores']} cores (max {max(b['load1'] for b in busy):.2f});"
                        " their figures competed with other work. Compare ratios within this run only.")
    if measured:
        others, steal = [m["cores"] for m in measured], [m["steal_cores"] for m in measured]
        rows.append(f"- Other work while the round workers ran: {min(others):.2f}–{max(others):.2f} cores, hypervisor"
                    f" steal {min(steal):.2f}–{max(steal):.2f} cores (machine busy CPU minus the worker's own).")
    loads = [x for step in steps for x in (step["load_average"]["before"][:1] + step["load_average"]["after"][:1])]
    if loads:
        rows.append(f"- 1-min load average around the round workers: {min(loads):.2f}–{max(loads):.2f}"
                    f" ({results['environment']['logical_cores']} cores; it counts the bench's own workers too).")
    return rows


def render_targets(results: dict[str, Any], name: str) -> list[str]:
    """Issue 14's goals for one kolite contender."""
    if name not in _ok(results):
        return []
    ratio = speed_ratios(results, name)
    rows = [("bs32 sorted vs OpenVINO best int8", ratio["sorted_vs_openvino"], 1.2, "×"),
            ("bs32 file order vs OpenVINO best int8", ratio["file_order_vs_openvino"], 1.2, "×"),
            ("bs1 p50 vs optimum int8", ratio["bs1_vs_optimum"], 2.0, "×"),
            ("bs1 p50 vs OpenVINO best int8", ratio["bs1_vs_openvino"], 1.2, "×"),
            ("bs1 p99 / OpenVINO best p99 (≤)", ratio["p99_over_openvino"], 1.0, "×"),
            ("sorted pass, share of the measured int8 GEMM peak", ratio["sorted_gemm_fraction"], 0.7, "%")]
    lines = ["", f"#### Targets (issue 14) for `{name}`", "", "| target | measured | goal | met |",
             "|---|---:|---:|:-:|"]
    for label, value, goal, unit in rows:
        met = None if value is None else (value <= goal if "(≤)" in label else value >= goal)
        scale = 100 if unit == "%" else 1
        shown = "–" if value is None else f"{value * scale:.{1 if unit == '%' else 2}f}{unit}"
        verdict = "–" if met is None else "yes" if met else "no"
        lines.append(f"| {label} | {shown} | {goal * scale:g}{unit} | {verdict} |")
    return lines


def render_limit(results: dict[str, Any]) -> list[str]:
    pl = results.get("physical_limit")
    if not pl:
        return []
    g, lim, theo = pl["gemm"], pl["limit"], pl.get("theoretical") or {}
    by_threads = pl.get("gemm_by_threads") or {str(g["threads"]): g}
    peaks = "; ".join(f"{t} thread{'s' if t != '1' else ''}: **{r['int8_peak_gops']:,.0f} GOP/s** at M×K×N"
                      f" {r['int8_peak_shape']}" for t, r in by_threads.items())
    clock = (f"{theo['ghz']:.2f} GHz, {theo.get('clock_used')}; the OS reports {_fmt(theo.get('nominal_ghz'), 2)} GHz"
             f" ({theo.get('nominal_source')})") if theo.get("ghz") else "clock unknown"
    lines = [
        "", "#### Physical limit (int8 GEMM roofline)", "",
        f"- Measured: ONNX Runtime's {g['op']} at the model's shapes — {peaks}. The bench's {g['threads']}-thread"
        f" peak sets the limit; fused DynamicQuantizeMatMul peak {g['dq_int8_peak_gops']:,.0f} GOP/s, fp32 MatMul"
        f" {g['fp32_peak_gflops']:,.0f} GFLOP/s.",
        f"- Theoretical, {theo.get('cores', '?')} cores × {clock} (vCPUs count as cores; a VM may back two of them"
        f" by one core's hyperthreads, which would halve these): AVX-512 VNNI"
        f" {_fmt(theo.get('vnni_peak_gops'), 0)} GOP/s ({theo.get('vnni_ops_per_cycle') or '–'} ops/cycle/core),"
        f" AMX {_fmt(theo.get('amx_peak_gops'), 0)} GOP/s ({theo.get('amx_ops_per_cycle') or '–'}"
        f" ops/cycle/core). Basis: {theo.get('basis', '–')}.",
    ]
    one_thread = (by_threads.get("1") or {}).get("int8_peak_gops")
    vnni_core = theo.get("vnni_peak_gops") and theo["vnni_peak_gops"] / theo["cores"]
    if one_thread and vnni_core and one_thread > vnni_core:
        lines.append(f"- One thread measures {one_thread:,.0f} GOP/s, above one core's VNNI ceiling"
                     f" ({vnni_core:,.0f}): on this CPU ONNX Runtime's MLAS runs these u8×s8 GEMMs on AMX.")
    mix = gemm_mix_ceiling(g)
    if mix and g.get("int8_peak_gops"):
        shares = ", ".join(f"{gops:,.0f} GOP/s at M={m} ({gops / g['int8_peak_gops'] * 100:.0f} %)"
                           for m, gops in mix.items())
        lines.append(f"- The model's own GEMMs, one of each shape per layer, each at its measured speed: {shares} of"
                     " the peak. Even if every other op were free, a pass could not use a larger share of the peak"
                     " with these kernels at these shapes.")
    lines += [
        f"- Model: {lim['ops_per_token'] / 1e6:.1f} M GEMM ops per token ({pl['ops']['int8_ops_per_token'] / 1e6:.1f} M"
        f" in int8 GEMMs of {pl['ops']['graph']}, the rest left in fp32 by the recipe); data:"
        f" {lim['total_tokens']:,} tokens ({lim['tokens_per_text']:.1f} per text, no padding)"
        f" → {lim['total_int8_ops'] / 1e12:.2f} T ops.",
        f"- Limit for the whole set at the measured peak: **{lim['texts_per_s']:,.0f} texts/s**; at the VNNI peak"
        f" {_fmt((pl.get('limit_vnni') or {}).get('texts_per_s'), 0)}; at the AMX peak"
        f" {_fmt((pl.get('limit_amx') or {}).get('texts_per_s'), 0)} (GEMMs only: attention products, layer norms,"
        " softmax and tokenization excluded — ceilings).",
        "", "| M | K | N | int8 GOP/s | DQ-int8 GOP/s | fp32 GFLOP/s |", "|---:|---:|---:|---:|---:|---:|",
    ]
    for s in g["shapes"]:
        lines.append(f"| {s['m']} | {s['k']} | {s['n']} | {s['int8_gops']:.0f} | {s['dq_int8_gops']:.0f} |"
                     f" {s.get('fp32_gflops', 0):.0f} |")
    return lines


def lead_table(results: dict[str, Any]) -> str:
    """The kolite contenders against OpenVINO's best int8 mode round by round, and against optimum at batch 1, with
    the issue's goals: the table the README and the benchmarks guide quote (``kolite_bench.results_tables``)."""

    def rounds(spread: dict[str, Any] | None) -> str:
        if not spread:
            return "–"
        return f"**{spread['median']:.2f}×** ({' / '.join(f'{r:.2f}' for r in spread['rounds'])})"

    def plain(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}×"

    lines = ["| contender | bs32 sorted × OpenVINO best, per round | bs32 file order × OpenVINO best | "
             "bs1 p50 × OpenVINO best | bs1 p50 × optimum int8 | bs1 p99 ÷ OpenVINO best p99 |",
             "|---|---|---|---|---:|---:|"]
    for name in sorted(n for n in _ok(results) if n.startswith("kolite")):
        per_round = results.get("ratios_per_round", {}).get(name) or round_ratios(results, name)
        ratio = speed_ratios(results, name)
        lines.append(f"| {name} | {rounds(per_round.get('sorted'))} | {rounds(per_round.get('file_order'))} | "
                     f"{rounds(per_round.get('bs1_p50'))} | {plain(ratio['bs1_vs_optimum'])} | "
                     f"{plain(ratio['p99_over_openvino'])} |")
    env = results["environment"]
    start, end = env.get("load_average_start") or ["?"], env.get("load_average_end") or ["?"]
    lines.append(f"\nGoals: ≥ 1.2× OpenVINO on both batch-32 passes, ≥ 2× optimum and p99 ≤ OpenVINO's at batch 1. "
                 f"Run {results['run_id']}: {results['dataset']['n_texts']:,} texts of {results['dataset']['name']}, "
                 f"{results['settings']['rounds']} rounds of {results['settings']['throughput_texts']:,} texts, "
                 f"{env['cpu_model']} ({env['logical_cores']} vCPUs, {results['settings']['threads']} threads per "
                 f"contender), load average {start[0]} at start, {end[0]} at end.")
    return "\n".join(lines)
