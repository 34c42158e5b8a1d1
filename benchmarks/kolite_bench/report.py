"""The markdown report of one results file (also what the README's benchmark section pastes)."""

from __future__ import annotations

from typing import Any

from kolite_bench.report_guard import render_guard
from kolite_bench.report_speed import render_limit, render_speed, render_targets

__all__ = ["accuracy_rows", "render_markdown", "target_ratios"]

_MB = 2**20


def _f(value: Any, digits: int = 1, scale: float = 1.0, suffix: str = "") -> str:
    if value is None:
        return "–"
    return f"{value * scale:,.{digits}f}{suffix}"


def _install_mb(results: dict[str, Any], name: str) -> float | None:
    kind = next((k for k in ("kolite", "optimum", "openvino") if name.startswith(k)), "torch")
    size = results["install_size"].get(kind) or {}
    return size.get("bytes") / _MB if size.get("bytes") else None


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "–"
    return f"{numerator / denominator:.1f}×"


def _header(results: dict[str, Any]) -> list[str]:
    env, model, data = results["environment"], results["model"], results["dataset"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    stand_in = {
        "trained-standin": "**stand-in** (trained here, same architecture; not the real seed weights)",
        "standin": "**stand-in** (untrained, deterministic weights: speed only, accuracy meaningless)",
        "hub": "the real seed model from the hub",
    }.get(model["source_kind"], "a local checkpoint")
    return [
        f"### kolite bench — seed {model['seed_id']} ({model['hub_id'] or 'custom'})"
        f"{' — STAND-IN, not the real seed weights' if model['stand_in'] else ''} — {results['run_id']}",
        "",
        f"- Model: {stand_in}: `{model['source']}`; artifact `{model['artifact']}`",
        f"- Data: {data['name']} ({data['n_texts']:,} texts, {'labelled' if data['labelled'] else 'unlabelled'}),"
        f" license {data['license']}",
        f"- Machine: {env['cpu_model']}, {env['logical_cores']} logical cores, {env['memory_gb']} GB;"
        f" AVX-512 {'yes' if env['avx512'] else 'no'}, VNNI {'yes' if env['vnni'] else 'no'}"
        f" (flags: {' '.join(env['cpu_flags'])}); {env['execution_provider']}",
        f"- Threads: {env['threads']} (torch.set_num_threads / ORT intra_op_num_threads / OpenVINO"
        f" INFERENCE_NUM_THREADS); batch size"
        f" {results['settings']['batch_size']}; load average at start {env['load_average_start']},"
        f" end {env.get('load_average_end')} (cores shared with other work)",
        f"- Versions: {versions}",
    ]


def accuracy_rows(results: dict[str, Any]) -> list[str]:
    """Accuracy and footprint; the whole-set pass is each contender's own batching (kolite: sorted chunks)."""
    contenders = results["contenders"]
    labelled = results["dataset"]["labelled"]
    ner = results["model"]["task"] == "token-classification"
    seed_p50 = (contenders.get("torch") or {}).get("latency_bs1", {}).get("ms", {}).get("p50")
    pipe_tps = (contenders.get("pipeline") or {}).get("throughput", {}).get("texts_per_s")
    acc_name = "entity F1" if ner else "accuracy"
    agree_name = "entity agreement F1" if ner else "agreement"
    delta_key, delta_name = ("delta_entity_f1_pt", "ΔF1 pt") if ner else ("delta_accuracy_pt", "Δacc pt")
    rows = [
        f"| contender | {acc_name} | {'' if ner else 'macro-F1 | '}{agree_name} | {delta_name} | texts |"
        " whole-set texts/s | × pipeline | bs1 p50 × seed recipe | cold start s | peak RSS MB | model MB |"
        " install MB |",
        "|---|" + "---:|" * (11 if ner else 12),
    ]
    for name, r in contenders.items():
        if "error" in r:
            rows.append(f"| {name} | failed: {r['error'].splitlines()[0][:80]} |" + " |" * (10 if ner else 11))
            continue
        s, tp = r["scores"], r["throughput"]["texts_per_s"]
        quality = s.get("entity_f1") if ner else s.get("accuracy")
        gate_failed = r.get("describe", {}).get("gate") == "failed"
        cells = [f"{name} (gate failed)" if gate_failed else name, _f(quality, 4) if labelled else "n/a (unlabelled)"]
        if not ner:
            cells.append(_f(s.get("macro_f1"), 4) if labelled else "n/a")
        cells += [
            _f(s.get("agreement"), 2, 100, "%"), _f(s.get(delta_key), 2, 1, "") if labelled else "n/a",
            f"{s['n_scored']:,}", _f(tp, 1), _ratio(tp, pipe_tps),
            _ratio(seed_p50, r["latency_bs1"]["ms"]["p50"]), _f(r["cold_start"]["seconds"], 2),
            _f(r["rss_peak_mb"], 0), _f(r["model_bytes"] / _MB, 1), _f(_install_mb(results, name), 0),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _notes(results: dict[str, Any]) -> list[str]:
    lines = [""]
    for name, reason in results["skipped"].items():
        lines.append(f"- `{name}` not run: {reason}")
    for name, r in results["contenders"].items():
        if "describe" in r:
            d = r["describe"]
            keys = ("padding", "batching", "quantization", "variant", "hint", "plugin", "parallel_kwarg")
            what = "; ".join(f"{k}: {v}" for k, v in d.items() if k in keys)
            lines.append(f"- `{name}`: {d.get('stack', '')}; {what}")
    reference = results.get("reference")
    lines.append(f"- Agreement is measured against `{reference}` (the PyTorch original's predictions)."
                 if reference else "- No PyTorch original ran: agreement not measured.")
    limits = {k: v for k, v in results["settings"]["contender_limits"].items() if v}
    if limits:
        lines.append(f"- Whole-set pass capped for: {limits} (accuracy and throughput of those rows use their first"
                     " N texts; agreement is over the overlap)")
    lines.append("- Whole-set pass: every text once at the benchmark batch size, each contender batching its own"
                 " way (kolite: length-sorted multi-batch calls; the others: file order), the predictions every"
                 " score uses; it runs in each contender's first-round process after that round's timed work."
                 " Cold start: fresh process start → first result (median). Peak RSS: that first-round process.")
    return lines


def _get(results: dict[str, Any], name: str, *keys: str) -> Any:
    value: Any = results["contenders"].get(name) or {}
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def target_ratios(results: dict[str, Any], name: str = "kolite-int8") -> dict[str, float | None]:
    """Issue 7's ratios for ``name`` in one run (None where a contender or the limit is missing)."""
    p50 = _get(results, name, "latency_bs1", "ms", "p50")
    tps = _get(results, name, "throughput", "texts_per_s")
    limit = ((results.get("physical_limit") or {}).get("limit") or {}).get("texts_per_s")

    def ratio(a: Any, b: Any) -> float | None:
        return a / b if a and b else None

    return {
        "bs1_vs_seed": ratio(_get(results, "torch", "latency_bs1", "ms", "p50"), p50),
        "bs1_vs_optimum": ratio(_get(results, "optimum-int8", "latency_bs1", "ms", "p50"), p50),
        "bs32_vs_pipeline": ratio(tps, _get(results, "pipeline", "throughput", "texts_per_s")),
        "bs32_vs_optimum": ratio(tps, _get(results, "optimum-int8", "throughput", "texts_per_s")),
        "limit_fraction": ratio(tps, limit),
    }


def _targets_section(results: dict[str, Any], name: str = "kolite-int8") -> list[str]:
    """Issue 7's targets for kolite's int8 variant, measured in this run."""
    if "latency_bs1" not in (results["contenders"].get(name) or {}):
        return []
    ratios = target_ratios(results, name)
    kolite_mb = (results["install_size"].get("kolite") or {}).get("bytes")
    rows = [
        ("bs1 p50 vs seed recipe (torch, pad 128)", ratios["bs1_vs_seed"], 10, "×"),
        ("bs1 p50 vs optimum int8", ratios["bs1_vs_optimum"], 2, "×"),
        ("bs32 throughput vs transformers pipeline", ratios["bs32_vs_pipeline"], 3.5, "×"),
        ("bs32 throughput vs optimum int8", ratios["bs32_vs_optimum"], 3, "×"),
        ("fraction of the int8 GEMM limit", ratios["limit_fraction"], 0.7, "%"),
        ("agreement with the original", _get(results, name, "scores", "agreement"), 0.995, "%"),
        ("cold start, s (≤)", _get(results, name, "cold_start", "seconds"), 1.0, "s"),
        ("runtime install, MB (≤)", kolite_mb / _MB if kolite_mb else None, 150, "MB"),
    ]
    lines = ["", f"#### Targets (issue 7) for `{name}`", "", "| target | measured | goal | met |",
             "|---|---:|---:|:-:|"]
    for label, value, goal, unit in rows:
        at_most = "(≤)" in label
        met = None if value is None else (value <= goal if at_most else value >= goal)
        scale = 100 if unit == "%" else 1
        shown = "–" if value is None else f"{value * scale:.{2 if unit in ('%', 's') else 1}f}{unit}"
        verdict = "–" if met is None else "yes" if met else "no"
        lines.append(f"| {label} | {shown} | {goal * scale:g}{unit} | {verdict} |")
    delta = _get(results, name, "scores", "delta_accuracy_pt")
    if delta is not None:
        lines.append(f"| \\|Δaccuracy\\| vs the original, pt (≤) | {abs(delta):.2f} | 0.3 |"
                     f" {'yes' if abs(delta) <= 0.3 else 'no'} |")
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    kolite_int8 = [n for n in results["contenders"] if n.startswith("kolite-int8")]
    lines = [*_header(results), *render_speed(results), *render_guard(results), "",
             "#### Accuracy, whole-set pass and footprint", "",
             *accuracy_rows(results), *_notes(results), *_targets_section(results),
             *[line for name in kolite_int8 for line in render_targets(results, name)], *render_limit(results)]
    install = results["install_size"]
    lines += ["", "#### Install size", ""]
    for kind, size in install.items():
        lines.append(f"- {kind}: {_f((size.get('bytes') or 0) / _MB, 0)} MB — {size['method']}")
    return "\n".join(lines) + "\n"
