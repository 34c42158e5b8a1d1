"""One table of a CUDA check's results (``benchmarks/results/gpu-*.json``), for the terminal and the docs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["render_docs", "rows", "table"]

RESULTS = Path(__file__).resolve().parents[1] / "results"
MARKER = re.compile(r"(<!-- gpu-table: (?P<run>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /gpu-table -->)", re.S)


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


def render_docs(text: str, results_dir: Path = RESULTS) -> str:
    """``text`` with every ``<!-- gpu-table: RUN -->`` … ``<!-- /gpu-table -->`` block re-rendered from
    ``results_dir/RUN.json`` (the docs never hold a hand-copied GPU figure)."""

    def block(match: re.Match[str]) -> str:
        results = json.loads((results_dir / f"{match['run']}.json").read_text(encoding="utf-8"))
        return f"{match.group(1)}{table(results)}\n{match.group(4)}"

    return MARKER.sub(block, text)


if __name__ == "__main__":  # python -m kolite_bench.gpu_report docs/guides/gpu.md: re-render its tables in place
    page = Path(sys.argv[1])
    page.write_text(render_docs(page.read_text(encoding="utf-8")), encoding="utf-8")
