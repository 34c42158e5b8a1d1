"""One table over several seeds' results files: issue 7's ratios for kolite's int8, seed by seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kolite_bench.report import _f, _get, target_ratios

__all__ = ["render_summary", "write_summary"]

_KIND = {"trained-standin": "trained stand-in", "standin": "untrained stand-in", "hub": "hub model"}


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}×"


def _row(results: dict[str, Any], name: str = "kolite-int8") -> str:
    model, data = results["model"], results["dataset"]
    ratios = target_ratios(results, name)
    gate = _get(results, name, "describe", "gate")
    cells = [
        f"{model['seed_id']}",
        _KIND.get(model["source_kind"], model["source_kind"]),
        f"{data['name']}, {_get(results, name, 'scores', 'n_scored') or 0:,}",
        _f(_get(results, name, "latency_bs1", "ms", "p50"), 2),
        _times(ratios["bs1_vs_seed"]),
        _times(ratios["bs1_vs_optimum"]),
        _f(_get(results, name, "throughput", "texts_per_s"), 1),
        _times(ratios["bs32_vs_pipeline"]),
        _times(ratios["bs32_vs_optimum"]),
        _f(ratios["limit_fraction"], 1, 100, "%"),
        _f(_get(results, name, "scores", "agreement"), 2, 100, "%") + (" (gate failed)" if gate == "failed" else ""),
        _f(_get(results, name, "cold_start", "seconds"), 2),
        _f((_get(results, name, "model_bytes") or 0) / 2**20, 1),
    ]
    return "| " + " | ".join(cells) + " |"


def render_summary(runs: list[dict[str, Any]]) -> str:
    header = (
        "| seed | model | data, texts | int8 bs1 p50 ms | × seed recipe | × optimum int8 | int8 bs32 texts/s"
        " | × pipeline | × optimum int8 | % of GEMM limit | int8 agreement | cold start s | int8 MB |"
    )
    lines = [header, "|---|---|---|" + "---:|" * 10]
    lines += [_row(r) for r in sorted(runs, key=lambda r: r["model"]["seed_id"])]
    lines += ["", "Runs: " + ", ".join(f"`{r['run_id']}`" for r in sorted(runs, key=lambda r: r["run_id"]))]
    return "\n".join(lines) + "\n"


def write_summary(paths: list[Path], out: Path) -> Path:
    """Render the summary of ``paths`` (results JSON files) into ``out/summary.md``."""
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    out.mkdir(parents=True, exist_ok=True)
    target = out / "summary.md"
    target.write_text(render_summary(runs), encoding="utf-8")
    return target
