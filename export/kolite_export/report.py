"""The final table ``kolite export`` prints: one row per variant with its size and gate numbers."""

from __future__ import annotations

from typing import Any

from kolite.manifest import Manifest

__all__ = ["variant_table"]

_COLUMNS = ("variant", "precision", "size MB", "max|Δlogit|", "agreement", "Δacc pt", "entity agr", "status")


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def variant_table(manifest: Manifest) -> str:
    rows = [_COLUMNS]
    for variant in manifest.variants.values():
        v = variant.validation
        agreement = v.get("label_agreement", v.get("token_label_agreement"))
        rows.append(
            (
                variant.name,
                variant.precision,
                f"{variant.size_bytes / 1e6:.1f}",
                _fmt(v.get("max_abs_logit_diff"), ".2e"),
                _fmt(agreement, ".4%"),
                _fmt(v.get("delta_accuracy_pt"), "+.2f"),
                _fmt(v.get("entity_agreement"), ".4f"),
                variant.status.upper() if not variant.passed else variant.status,
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
