"""τ for the runtime's fidelity guard (``kolite.guard``), measured on texts no gate and no calibration reads.

Method (recorded in the manifest with its numbers): run each int8 variant and the float variant it falls back to
(``fp32-opt``, else ``fp32``) through the runtime's own path (``served_outputs``) on held-out texts of the
validation data's kind, and compare them.

A label flips only if the *gap* it depends on, top logit minus a rival's, moves by more than the gap itself. So
``tau`` bounds the error of those gaps, measured directly: for every row (for NER every token), the int8 top
label against its runner-up and against every label whose int8 gap is under four times ``tau_pooled`` (the only
rivals that could be near enough to matter), e = |(q_top − q_j) − (f_top − f_j)|, and

    tau = min( max(SAFETY × q(e, QUANTILE), max e), tau_pooled )

a high quantile with a safety factor for the tail not seen on these texts, never below what was seen. Bounding
each logit and adding the two (|Δ₁| + |Δ₂|) is looser by up to 2× where the two logits' errors move together;
on NER it is. For multi-label outputs the decision is one logit against 0, so ``tau`` bounds |Δ| itself.

The pooled-word checks of NER's ``average``/``max`` aggregations compare softmax scores, which move with every
label's logit, not only near rivals: they keep the per-logit bound,

    tau_pooled = 2 × max( SAFETY × q(|Δ|, QUANTILE), max |Δ| )   (|Δ| = |int8 − float| of every logit).

The manifest also records the share of held-out rows the guard would re-run at ``tau`` (its cost) and how many
rows flip between int8 and float there without it.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from kolite.guard import decision_margins
from kolite.manifest import Variant

from kolite_export.calibration import CALIBRATION_SETS, CalibrationSet
from kolite_export.catalogue import read_dataset
from kolite_export.validation import runtime_sequences, served_outputs
from kolite_export.validation_data import ValidationSet, load_validation_set

__all__ = [
    "FLOAT_FALLBACKS",
    "GUARD_QUANTILE",
    "GUARD_SAFETY",
    "RIVAL_WINDOW",
    "guard_texts",
    "measure_guard",
    "with_guards",
]

GUARD_QUANTILE = 99.99  # percentile of per-logit |Δ|
GUARD_SAFETY = 1.5
RIVAL_WINDOW = 4.0  # rivals measured: the runner-up and labels within this many tau_pooled of the top
FLOAT_FALLBACKS = ("fp32-opt", "fp32")  # the float graph the guard re-runs in, first that passed
DEFAULT_GUARD_TEXTS = {"text-classification": 4000, "token-classification": 1000}


def guard_texts(
    data_spec: str,
    validation: ValidationSet,
    calibration: CalibrationSet,
    count: int,
    shared: str | os.PathLike[str] | None = None,
) -> tuple[str, tuple[str, ...]]:
    """(source, up to ``count`` texts) of the validation data's kind that are neither validation nor calibration
    texts: from the calibration pool (NSMC train, KOTE validation) or the rest of the validation file."""
    taken = set(validation.texts) | set(calibration.texts)
    pool: tuple[str, ...] = ()
    source = ""
    if data_spec in CALIBRATION_SETS:
        key = CALIBRATION_SETS[data_spec]
        try:
            data = read_dataset(key, Path(shared) / "data" if shared is not None else None)
            pool, source = data.texts, f"{key}:{data.path.name}"
        except FileNotFoundError:
            pool = ()
    if not pool:
        full = load_validation_set(data_spec, None, shared)
        pool, source = full.texts, full.name
    rest = [t for t in pool if t.strip() and t not in taken]
    # Offset by half a step from calibration's even spread, so the two draw different rows of one pool.
    if len(rest) > count:
        step = len(rest) / count
        rest = [rest[int(i * step + step / 2)] for i in range(count)]
    return f"{source} (not validation, not calibration)", tuple(rest)


def measure_guard(
    int8_graph: Path,
    float_graph: Path,
    sequences: tuple[tuple[int, ...], ...],
    pad_token_id: int,
    multi_label: bool = False,
) -> dict[str, Any]:
    """τ and its numbers for one int8 graph against its float fallback on ``sequences`` (held-out texts)."""
    quantized = served_outputs(int8_graph, sequences, pad_token_id)
    reference = served_outputs(float_graph, sequences, pad_token_id)
    deltas = np.concatenate([np.abs(q - r).ravel() for q, r in zip(quantized, reference, strict=True)])
    quantile = float(np.percentile(deltas, GUARD_QUANTILE))
    largest = float(deltas.max())
    per_logit = max(GUARD_SAFETY * quantile, largest)
    tau_pooled = 2.0 * per_logit
    if multi_label:
        gap_errors = deltas
    else:
        gap_errors = np.concatenate([_gap_errors(q, r, RIVAL_WINDOW * tau_pooled)
                                     for q, r in zip(quantized, reference, strict=True)])
    gap_quantile = float(np.percentile(gap_errors, GUARD_QUANTILE)) if gap_errors.size else 0.0
    gap_largest = float(gap_errors.max()) if gap_errors.size else 0.0
    tau = min(max(GUARD_SAFETY * gap_quantile, gap_largest), tau_pooled)
    margins = decision_margins(quantized, multi_label)
    flips = sum(_decisions(q, multi_label) != _decisions(r, multi_label) for q, r in zip(quantized, reference,
                                                                                          strict=True))
    measured = "|int8 - float logit|" if multi_label else "|int8 - float gap, top to runner-up or near rival|"
    return {
        "tau": round(tau, 6),
        "tau_pooled": round(tau_pooled, 6),
        "rerun_fraction": float((margins < tau).mean()),
        "method": f"min(max({GUARD_SAFETY} x p{GUARD_QUANTILE} e, max e), tau_pooled), e = {measured}; tau_pooled"
                  f" = 2 x max({GUARD_SAFETY} x p{GUARD_QUANTILE} |int8 - float logit|, max |int8 - float logit|)",
        "quantile_abs_delta": quantile,
        "max_abs_delta": largest,
        "quantile_gap_error": gap_quantile,
        "max_gap_error": gap_largest,
        "rows": len(sequences),
        "unguarded_flips": int(flips),
    }


def _gap_errors(quantized: np.ndarray, reference: np.ndarray, window: float) -> np.ndarray:
    """|int8 gap − float gap| between each unit's int8 top label and its rivals: the runner-up, and every label
    whose int8 gap is under ``window``; one row of logits per unit (a text, or a token)."""
    q = np.atleast_2d(np.asarray(quantized, dtype=np.float64))
    f = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    if q.shape[-1] < 2 or q.shape[0] == 0:
        return np.zeros(0)
    rows = np.arange(len(q))
    top = q.argmax(axis=-1)
    q_gaps = q[rows, top][:, None] - q
    f_gaps = f[rows, top][:, None] - f
    q_gaps[rows, top] = np.inf  # not a rival of itself
    rivals = (q_gaps < window) | (q_gaps == q_gaps.min(axis=-1, keepdims=True))
    return np.abs(q_gaps - f_gaps)[rivals]


def _decisions(logits: np.ndarray, multi_label: bool) -> bytes:
    return (logits > 0).tobytes() if multi_label else np.asarray(logits).argmax(-1).tobytes()


def with_guards(
    variants: dict[str, Variant],
    workdir: Path,
    tokenizer_json: Path,
    max_length: int,
    pad_token_id: int,
    multi_label: bool,
    texts: tuple[str, ...],
    source: str,
) -> dict[str, Variant]:
    """``variants`` with a measured ``guard`` on every passed int8 variant (when a float variant passed)."""
    fallback = next((name for name in FLOAT_FALLBACKS if name in variants and variants[name].passed), None)
    if fallback is None or not texts:
        return variants
    sequences = runtime_sequences(tokenizer_json, max_length, texts)
    result = dict(variants)
    for name, variant in variants.items():
        if variant.precision != "int8" or not variant.passed:
            continue
        numbers = measure_guard(workdir / variant.file, workdir / variants[fallback].file, sequences, pad_token_id,
                                multi_label)
        result[name] = replace(variant, guard={"float_variant": fallback, **numbers, "data": source})
    return result
