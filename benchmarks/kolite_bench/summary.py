"""One table over several seeds' results files: issue 7's ratios for kolite's int8, seed by seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kolite_bench.report import _f, _get, _ratio

__all__ = ["render_summary", "write_summary"]

_KIND = {"trained-standin": "trained stand-in", "standin": "untrained stand-in", "hub": "hub model"}


def _row(results: dict[str, Any], name: str = "kolite-int8") -> str:
    model, data = results["model"], results["dataset"]
    p50 = _get(results, name, "latency_bs1", "ms", "p50")
    tps = _get(results, name, "throughput", "texts_per_s")
    limit = ((results.get("physical_limit") or {}).get("limit") or {}).get("texts_per_s")
    gate = _get(results, name, "describe", "gate")
    agreement = _get(results, name, "scores", "agreement")
    if agreement is None:
        agreement = _get(results, name, "scores", "entity_agreement_f1")
    cells = [
        f"{model['seed_id']}",
        _KIND.get(model["source_kind"], model["source_kind"]),
        f"{data['name']}, {_get(results, name, 'scores', 'n_scored') or 0:,}",
        _f(p50, 2),
        _ratio(_get(results, "torch", "latency_bs1", "ms", "p50"), p50),
        _ratio(_get(results, "optimum-int8", "latency_bs1", "ms", "p50"), p50),
        _f(tps, 1),
        _ratio(tps, _get(results, "pipeline", "throughput", "texts_per_s")),
        _ratio(tps, _get(results, "optimum-int8", "throughput", "texts_per_s")),
        _f(tps / limit if tps and limit else None, 1, 100, "%"),
        _f(agreement, 2, 100, "%") + (" (gate failed)" if gate == "failed" else ""),
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
