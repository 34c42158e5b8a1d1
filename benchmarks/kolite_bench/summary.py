"""One table over several seeds' results files: kolite int8 against the original, optimum and OpenVINO, seed by
seed (issue 7's and issue 14's ratios, the speed numbers being medians over the rotated rounds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kolite_bench.report import _f, _get, target_ratios
from kolite_bench.report_speed import speed_ratios

__all__ = ["render_summary", "write_summary"]

_KIND = {"trained-standin": "trained stand-in", "standin": "untrained stand-in", "hub": "hub model"}


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _row(results: dict[str, Any], name: str = "kolite-int8") -> str:
    model, data = results["model"], results["dataset"]
    ratios, speed = target_ratios(results, name), speed_ratios(results, name)
    gate = _get(results, name, "describe", "gate")
    p50_rounds = _get(results, name, "latency_bs1", "spread", "p50", "rounds") or []
    ner = model["task"] == "token-classification"
    delta = _get(results, name, "scores", "delta_entity_f1_pt" if ner else "delta_accuracy_pt")
    cells = [
        f"{model['seed_id']}",
        _KIND.get(model["source_kind"], model["source_kind"]),
        f"{data['name']}, {_get(results, name, 'scores', 'n_scored') or 0:,}",
        _f(_get(results, name, "latency_bs1", "ms", "p50"), 2) + (
            f" ({' / '.join(f'{v:.2f}' for v in p50_rounds)})" if len(p50_rounds) > 1 else ""),
        _f(_get(results, name, "latency_bs1", "ms", "p99"), 2),
        _times(ratios["bs1_vs_seed"]),
        _times(speed["bs1_vs_optimum"]),
        _times(speed["bs1_vs_openvino"]),
        _f(_get(results, name, "throughput_rounds", "sorted", "texts_per_s"), 0),
        _times(speed["sorted_vs_openvino"]),
        _f(_get(results, name, "throughput_rounds", "file_order", "texts_per_s"), 0),
        _times(speed["file_order_vs_openvino"]),
        _f(speed["sorted_gemm_fraction"], 1, 100, "%"),
        _f(speed["sorted_vnni_fraction"], 1, 100, "%"),
        _f(_get(results, name, "throughput", "texts_per_s"), 0),
        _times(ratios["bs32_vs_pipeline"]),
        _f(_get(results, name, "scores", "agreement"), 2, 100, "%") + (" (gate failed)" if gate == "failed" else ""),
        _f(delta, 2),
        _f(_get(results, name, "cold_start", "seconds"), 2),
        _f((_get(results, name, "model_bytes") or 0) / 2**20, 1),
    ]
    return "| " + " | ".join(cells) + " |"


def render_summary(runs: list[dict[str, Any]], name: str = "kolite-int8") -> str:
    header = (
        f"| seed | model | data, texts | {name} bs1 p50 ms (rounds) | p99 ms | × seed recipe | × optimum int8 |"
        " × OpenVINO best | bs32 sorted texts/s | × OpenVINO best | bs32 file order texts/s | × OpenVINO best |"
        " sorted: % of measured GEMM peak | % of VNNI peak | whole-set texts/s | × pipeline | agreement |"
        " Δacc / ΔF1 pt | cold start s | MB |"
    )
    lines = [header, "|---|---|---|" + "---:|" * 17]
    lines += [_row(r, name) for r in sorted(runs, key=lambda r: r["model"]["seed_id"])]
    lines += ["", "Runs: " + ", ".join(f"`{r['run_id']}`" for r in sorted(runs, key=lambda r: r["run_id"])),
              "", "bs1 and bs32: medians over rotated rounds, each contender alone in a fresh process; × OpenVINO"
              " best: against the faster of OpenVINO's latency and throughput modes (> 1: kolite is faster)."]
    return "\n".join(lines) + "\n"


def write_summary(paths: list[Path], out: Path) -> Path:
    """Render the summary of ``paths`` (results JSON files) into ``out/summary.md``."""
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    out.mkdir(parents=True, exist_ok=True)
    target = out / "summary.md"
    target.write_text(render_summary(runs), encoding="utf-8")
    return target
