"""One table of a CUDA check's results (``benchmarks/results/gpu-*.json``), for the terminal and the docs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["rows", "table"]

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def rows(results: dict[str, Any]) -> list[list[str]]:
    """seed, engine, labels agree, entities agree (simple), max |Δ|, bs1 p50/p99 ms, bs32 and bs256 texts/s."""
    out = []
    for seed, data in results["seeds"].items():
        if "error" in data:
            out.append([seed, "error", data["error"][:60], "", "", "", "", ""])
            continue
        engines = [(f"kolite {v} ({row.get('device', '?')})", row) for v, row in data["variants"].items()]
        engines.append((f"kolite int8-static (CPU, {data['cpu']['threads']} threads)", data["cpu"]))
        if "torch" in data:
            engines.append((f"torch {data['torch'].get('dtype', '')} ({data['torch'].get('device', '')})",
                            data["torch"]))
        for name, row in engines:
            if "skipped" in row:
                out.append([seed, name, "skipped: " + row["skipped"], "", "", "", "", ""])
                continue
            fid, spd = row["fidelity"], row["speed"]
            entity = fid.get("entity_agreement_simple")
            out.append([
                seed, name, f"{100 * fid['label_agreement']:.2f} %",
                "–" if entity is None else f"{100 * entity:.2f} %",
                f"{fid['max_abs_logit_delta']:.2e}",
                f"{_fmt(spd['bs1']['p50_ms'])} / {_fmt(spd['bs1']['p99_ms'])}",
                _fmt(spd.get("bs32_texts_per_s"), 0), _fmt(spd.get("bs256_texts_per_s"), 0),
            ])
    return out


def table(results: dict[str, Any]) -> str:
    header = ["seed", "engine", "labels = PyTorch", "entities = PyTorch", "max |Δlogit|", "bs1 p50 / p99 ms",
              "bs32 texts/s", "bs256 texts/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    env = results["environment"]
    lines.append(f"\nrun {results['run_id']}, {env.get('gpu') or 'no GPU (dry run)'}, onnxruntime "
                 f"{env['onnxruntime']}, {env['cpus']} CPUs" + (" — DRY RUN" if env.get("dry_run") else ""))
    return "\n".join(lines)
