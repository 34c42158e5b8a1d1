"""Tables in the docs rendered from committed results files, so no page holds a hand-copied figure.

A page marks each table with the kind of results and the file it comes from::

    <!-- guard-table: guard-000 -->
    ...rendered rows...
    <!-- /guard-table -->

``python -m kolite_bench.results_tables PAGE...`` re-renders the blocks in place; ``scripts/gen_docs.py --check``
and a test fail when a committed page differs from its results. Kinds:

- ``gpu``: a CUDA check (``gpu-*.json``, ``kolite_bench.gpu_report``);
- ``guard``: the fidelity-guard study (``guard-*.json``, ``kolite_bench.guard agreement``);
- ``guard-cost``: a ``kolite bench`` run with ``kolite-<variant>-guarded`` contenders (``kolite_bench.report_guard``);
- ``speed-lead``: a ``kolite bench`` run's kolite contenders against OpenVINO and optimum, per round
  (``kolite_bench.report_speed.lead_table``);
- ``guard-rss``: resident memory with the guard off and on (``guard-rss-*.json``, ``kolite_bench.guard rss``);
- ``crosscheck``: the second harness's kolite ÷ OpenVINO ratios per round (``crosscheck-*.json``,
  ``kolite_bench.crosscheck``);
- ``error-curve``: float nodes kept vs τ, re-runs and speed (``ner-error-curve-*.json``,
  ``kolite_bench.ner_error_curve``);
- ``range-study``: int8-static activation-range methods vs τ and re-runs (``range-study-*.json``,
  ``kolite_bench.range_study``);
- ``serve-ab``: served req/s at N one-text clients against offline texts/s, per round and server
  (``serve-ab-*.json``, ``kolite_bench.serve_ab``);
- ``latency-ab``: batch-1 latency of two runtime trees in fresh-process pairs (``latency-ab-*.json``,
  ``kolite_bench.latency_ab``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["MARKER", "PAGES", "RENDERERS", "render_page"]

RESULTS = Path(__file__).resolve().parents[1] / "results"
MARKER = re.compile(
    r"(<!-- (?P<kind>[\w-]+?)-table: (?P<run>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /(?P=kind)-table -->)", re.S
)
# The pages that hold rendered tables (checked by scripts/gen_docs.py --check).
PAGES = ("README.md", "docs/guides/gpu.md", "docs/guides/fidelity.md", "docs/guides/benchmarks.md")


def _gpu(results: dict[str, Any]) -> str:
    from kolite_bench.gpu_report import table

    return table(results)


def _guard_cost(results: dict[str, Any]) -> str:
    from kolite_bench.report_guard import render_guard

    env = results["environment"]
    start, end = env.get("load_average_start") or ["?"], env.get("load_average_end") or ["?"]
    lines = render_guard(results)[3:]  # the table and its note, without the blank line and section heading
    lines.append(f"\nrun {results['run_id']}, {results['dataset']['n_texts']:,} texts of {results['dataset']['name']}, "
                 f"{env['cpu_model']} ({env['logical_cores']} vCPUs, {results['settings']['threads']} threads each), "
                 f"load average {start[0]} at start, {end[0]} at end")
    return "\n".join(lines).strip("\n")


def _guard(results: dict[str, Any]) -> str:
    from kolite_bench.guard_report import agreement_table

    return agreement_table(results)


def _speed_lead(results: dict[str, Any]) -> str:
    from kolite_bench.report_speed import lead_table

    return lead_table(results)


def _crosscheck(results: dict[str, Any]) -> str:
    from kolite_bench.crosscheck import table

    return table(results)


def _error_curve(results: dict[str, Any]) -> str:
    from kolite_bench.ner_error_curve import table

    return table(results)


def _serve_ab(results: dict[str, Any]) -> str:
    from kolite_bench.serve_ab import table

    return table(results)


def _latency_ab(results: dict[str, Any]) -> str:
    from kolite_bench.latency_ab import table

    return table(results)


def _range_study(results: dict[str, Any]) -> str:
    from kolite_bench.range_study import table

    return table(results)


def _guard_rss(results: dict[str, Any]) -> str:
    from kolite_bench.guard_report import rss_table

    return rss_table(results)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "crosscheck": _crosscheck, "error-curve": _error_curve, "gpu": _gpu, "guard": _guard,
    "guard-cost": _guard_cost, "guard-rss": _guard_rss, "latency-ab": _latency_ab, "range-study": _range_study,
    "serve-ab": _serve_ab, "speed-lead": _speed_lead,
}


def render_page(text: str, results_dir: Path = RESULTS) -> str:
    """``text`` with every marked block re-rendered from ``results_dir/RUN.json``."""

    def block(match: re.Match[str]) -> str:
        render = RENDERERS.get(match["kind"])
        if render is None:
            raise ValueError(f"unknown results table kind {match['kind']!r} (known: {', '.join(RENDERERS)})")
        results = json.loads((results_dir / f"{match['run']}.json").read_text(encoding="utf-8"))
        return f"{match.group(1)}{render(results)}\n{match.group(5)}"

    return MARKER.sub(block, text)


if __name__ == "__main__":
    for name in sys.argv[1:] or PAGES:
        page = Path(name)
        page.write_text(render_page(page.read_text(encoding="utf-8")), encoding="utf-8")
