"""What ``kolite export`` prints: one export's outcome and a row per variant with its size and gate numbers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kolite.manifest import Manifest

__all__ = ["export_and_report", "variant_table"]


def export_and_report(source: str, out: Path, options: Any, progress: Callable[[str], None]) -> int:
    """Export one checkpoint and print its table; the exit code of ``kolite export``."""
    from kolite_export.exporter import export

    try:
        result = export(source, out, options, progress=progress)
    except (FileNotFoundError, ValueError) as exc:  # bad validation data / variant names: one line, exit 2
        print(f"kolite export: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{out}  ({result.manifest.task}, {len(result.manifest.labels)} labels"
        f"{', up to date' if result.skipped else ''})"
    )
    print(variant_table(result.manifest))
    for name, message in result.failures.items():
        print(f"kolite export: {name} FAILED its gate: {message}", file=sys.stderr)
    return 0 if result.ok else 1

_COLUMNS = (
    "variant",
    "precision",
    "size MB",
    "max|Δlogit|",
    "agreement",
    "low 95%",
    "Δacc pt",
    "entity agr",
    "float nodes",
    "status",
)


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _float_nodes(recipe: dict[str, Any]) -> str:
    """Nodes accuracy repair kept in float, and their share of the quantizable weights (≈ int8 GEMM work)."""
    repair = recipe.get("repair")
    if not repair:
        return "-"
    return f"{len(repair['float_nodes'])} ({repair['float_weight_fraction']:.1%})"


def variant_table(manifest: Manifest) -> str:
    rows = [_COLUMNS]
    for variant in manifest.variants.values():
        v = variant.validation
        key = "label_agreement" if "label_agreement" in v else "token_label_agreement"
        rows.append(
            (
                variant.name,
                variant.precision,
                f"{variant.size_bytes / 1e6:.1f}",
                _fmt(v.get("max_abs_logit_diff"), ".2e"),
                _fmt(v.get(key), ".4%"),
                _fmt(v.get(f"{key}_low95"), ".2%"),
                _fmt(v.get("delta_accuracy_pt"), "+.2f"),
                _fmt(v.get("entity_agreement"), ".4f"),
                _float_nodes(variant.recipe),
                variant.status.upper() if not variant.passed else variant.status,
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
