"""The fidelity-guard study's table (``benchmarks/results/guard-*.json`` from ``python -m kolite_bench.guard
agreement``), rendered into the docs by ``kolite_bench.results_tables``."""

from __future__ import annotations

from typing import Any

__all__ = ["agreement_table", "rss_table"]

_AGGREGATIONS = ("none", "simple", "first", "average", "max")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f} %"


def _tau(guard: dict[str, Any], detail: bool = True) -> str:
    """τ as measured: on the error of decision gaps (with the per-logit bound pooled words use), or, for results
    from before that, on per-logit |Δ| alone."""
    if "max_gap_error" not in guard:
        spread = f" ({guard['quantile_abs_delta']:.4f} / {guard['max_abs_delta']:.4f} \\|Δ\\|)" if detail else ""
        return f"{guard['tau']:.3f}{spread}"
    spread = f"gap {guard['quantile_gap_error']:.4f} / {guard['max_gap_error']:.4f}; " if detail else ""
    return f"{guard['tau']:.3f} ({spread}pooled words {guard['tau_pooled']:.3f})"


def _classification(results: dict[str, Any]) -> list[str]:
    lines = ["| variant | τ (held-out p99.99 / max error) | rows re-run, held-out / these texts |"
             " labels = PyTorch, unguarded | guarded (the runtime) |", "|---|---|---|---|---|"]
    for name, entry in results["variants"].items():
        guard, plain = entry.get("guard") or {}, entry["unguarded"]
        if not guard:
            lines.append(f"| {name} | – | – | {_pct(plain['label_agreement'])} ({plain['label_flips']} flips) | – |")
            continue
        guarded = entry["guarded"]
        served = entry["runtime_rows_rerun"] / results["texts"]
        lines.append(
            f"| {name} | {_tau(guard)} | "
            f"{_pct(guard['rerun_fraction'])} / {_pct(served)} | {_pct(plain['label_agreement'])} "
            f"({plain['label_flips']} flips) | **{_pct(guarded['label_agreement'])}** ({guarded['label_flips']} flips"
            f"{'' if entry['runtime_guard_equals_offline'] else '; runtime differs from the offline guard'}) |")
    return lines


def _entities(results: dict[str, Any]) -> list[str]:
    lines = ["| variant | τ | sentences ≠ PyTorch, or rows re-run | " + " | ".join(_AGGREGATIONS) + " |",
             "|---|---|---|" + "---:|" * len(_AGGREGATIONS)]
    for name, entry in results["variants"].items():
        guard = entry.get("guard") or {}
        plain = [str(entry["unguarded"][a]["sentences_differing"]) for a in _AGGREGATIONS]
        tau = _tau(guard, detail=False) if guard else "–"
        lines.append(f"| {name} | {tau} | unguarded | " + " | ".join(plain) + " |")
        served = entry.get("guarded_as_served")
        if served:
            lines.append(f"| {name} | | guarded (the runtime) | "
                         + " | ".join(f"**{served[a]['sentences_differing']}**" for a in _AGGREGATIONS) + " |")
            lines.append(f"| {name} | | rows re-run | "
                         + " | ".join(_pct(served[a]["rerun_fraction"]) for a in _AGGREGATIONS) + " |")
    return lines


def agreement_table(results: dict[str, Any]) -> str:
    """Per variant: τ, the rows re-run and agreement with PyTorch unguarded and guarded, with the run's facts."""
    per_entity = any("guarded_as_served" in e or isinstance(e["unguarded"].get("simple"), dict)
                     for e in results["variants"].values())
    lines = _entities(results) if per_entity else _classification(results)
    machine = results["machine"]
    after = results.get("load_average_after") or ["?"]
    lines.append(f"\nrun {results['run_id']}, {results['texts']:,} texts of {results['data']}, {machine['cpu']} "
                 f"({machine['cpus']} vCPUs), commit {machine['commit']}, load average {machine['load_average'][0]} "
                 f"at start, {after[0]} at end")
    return "\n".join(lines)


def rss_table(results: dict[str, Any]) -> str:
    """Resident memory of one artifact loaded with the guard off and on (``python -m kolite_bench.guard rss``)."""
    off, on = results["off"], results["on"]
    machine, delta = results["machine"], results["delta_rss_mb"]
    return "\n".join([
        "| artifact | variant | RSS, guard off | guard on | cost |", "|---|---|---:|---:|---:|",
        f"| {results['artifact'].rstrip('/').rsplit('/', 1)[-1]} | {off['variant']} | {off['rss_mb']:.0f} MB | "
        f"{on['rss_mb']:.0f} MB | +{delta:.0f} MB (+{delta / off['rss_mb'] * 100:.0f} %) |",
        f"\nrun {results['run_id']}: RSS after loading and one 64-text call, each in a fresh process; "
        f"{machine['cpu']} ({machine['cpus']} vCPUs), commit {machine['commit']}",
    ])
