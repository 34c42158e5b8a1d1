"""Accuracy repair: when an int8 variant misses its gate, keep its most harmful quantized nodes in float, as few as
needed, until it passes — or say that nothing under the float budget passes.

The method follows NNCF's accuracy-controlled quantization (``quantize_with_accuracy_control``): rank the quantized
nodes by how much putting each one alone back in float brings the outputs closer to the original on a *ranking
subset* (the validation texts the quantized graph gets most wrong), then revert them greedily in that order, checking
the real gate on the whole validation set after each one.

- Ranking subset: the texts (NER: sentences) whose quantized margin for the original's label (token labels) is the
  smallest — every flipped text first, then those nearest to flipping. 32-128 texts.
- Score: the normalised mean squared error of the subset's logits against the PyTorch reference (NNCF's
  logits-based ranker). Continuous, so it ranks nodes even when no single one flips a label back.
- Leave-one-out without re-quantizing: every ORT quantizer keeps a node's float input and output tensor names, so
  the node is swapped back to float inside the already-quantized graph (``float_swap``); a builder whose graph
  does not allow that is rebuilt with ``exclude_nodes`` instead. Deterministic: same graphs, same texts, same order.
- Greedy: each step rebuilds through the variant's own builder with ``exclude_nodes`` (what ships is what a plain
  export with that recipe writes) and validates it. The budget is a share of the quantizable weights (≈ the int8
  GEMM work per token), 25 % by default.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from kolite_export.trial import Trial, Validator, cpu_session
from kolite_export.validation import encode_set, onnx_outputs
from kolite_export.variants import VariantSpec
from kolite_export.variants.spec import QuantizedScope

__all__ = ["ranking_rows", "repair"]

SCRATCH = "scratch.repair.onnx"
MIN_SUBSET, MAX_SUBSET = 32, 128


def _margins(reference: list[np.ndarray], outputs: list[np.ndarray]) -> np.ndarray:
    """Per text, the quantized logit of the original's label minus the best other one (< 0: flipped); for token
    classification the smallest such margin over the text's tokens."""
    margins = []
    for ref, out in zip(reference, outputs, strict=True):
        ref2, out2 = np.atleast_2d(ref), np.atleast_2d(out)
        labels = ref2.argmax(-1)
        rows = np.arange(len(labels))
        chosen = out2[rows, labels]
        others = out2.copy()
        others[rows, labels] = -np.inf
        margins.append(float((chosen - others.max(-1)).min()))
    return np.array(margins)


def ranking_rows(reference: list[np.ndarray], outputs: list[np.ndarray]) -> list[int]:
    """The ranking subset: flipped texts and those nearest to flipping, in validation order."""
    margins = _margins(reference, outputs)
    size = int(np.clip(2 * (margins < 0).sum(), MIN_SUBSET, MAX_SUBSET))
    return sorted(int(i) for i in np.argsort(margins, kind="stable")[:size])


def _nmse(reference: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    num = sum(float(np.square(o - r).sum()) for r, o in zip(reference, outputs, strict=True))
    den = sum(float(np.square(r).sum()) for r in reference)
    return num / max(den, 1e-12)


def _rank(
    validator: Validator,
    spec: VariantSpec,
    scope: QuantizedScope,
    quantized: Trial,
    candidates: list[str],
    progress: Callable[[str], None],
) -> list[tuple[str, float]]:
    """(node, subset NMSE with that node alone in float), most harmful node first."""
    from kolite_export.float_swap import FloatSwapper

    ctx = validator.ctx
    rows = ranking_rows(validator.reference, quantized.outputs or [])
    texts = tuple(validator.data.texts[i] for i in rows)
    reference = [validator.reference[i] for i in rows]
    encoded = encode_set(ctx.checkpoint, texts)
    quantized_path = ctx.workdir / spec.file
    swapper = FloatSwapper.open(quantized_path, scope.graph)
    baseline = _nmse(reference, onnx_outputs(cpu_session(quantized_path), ctx.checkpoint, encoded))
    progress(f"{spec.name} repair: ranking {len(candidates)} nodes on {len(rows)} texts (NMSE {baseline:.2e})")
    scores = []
    for node in candidates:
        graph: Path | bytes | None = swapper.swapped(node)
        if graph is None:  # this builder's graph does not allow the swap: rebuild without the node
            spec.build(ctx, ctx.workdir / SCRATCH, (node,))
            graph = ctx.workdir / SCRATCH
        scores.append((node, _nmse(reference, onnx_outputs(cpu_session(graph), ctx.checkpoint, encoded))))
    return sorted(scores, key=lambda item: (item[1], candidates.index(item[0])))


def repair(
    validator: Validator,
    spec: VariantSpec,
    failed: Trial,
    max_float_fraction: float,
    progress: Callable[[str], None],
) -> Trial:
    """The passing trial with the fewest float nodes found greedily, or ``failed`` with an error saying that
    nothing under ``max_float_fraction`` of the quantizable weights in float passes."""
    assert spec.quantized_scope is not None
    started = time.perf_counter()
    ctx = validator.ctx
    scope = spec.quantized_scope(ctx)
    weights = scope.nodes()
    total = sum(weights.values())
    ranked = _rank(validator, spec, scope, failed, list(weights), progress)
    chosen: list[str] = []
    tried = failed
    for node, _ in ranked:
        if (sum(weights[n] for n in chosen) + weights[node]) / total > max_float_fraction:
            break
        chosen.append(node)
        tried = validator.trial(spec, tuple(chosen), file=SCRATCH)
        agreement = _agreement(tried)
        progress(
            f"{spec.name} repair: {len(chosen)} node(s) in float, agreement {agreement:.4%}: {tried.variant.status}"
        )
        if tried.variant.passed:
            shutil.move(ctx.workdir / SCRATCH, ctx.workdir / spec.file)
            return _with_repair(tried, chosen, weights, ranked, failed, time.perf_counter() - started)
    message = (
        f"{failed.variant.validation.get('error')}; accuracy repair found nothing that passes with at most "
        f"{max_float_fraction:.0%} of the quantizable weights (≈ int8 GEMM work) in float "
        f"(tried {len(chosen)} of {len(ranked)} nodes, most harmful first)"
    )
    numbers = {**failed.variant.validation, "error": message}
    return Trial(replace(failed.variant, validation=numbers), failed.outputs)


def _agreement(trial: Trial) -> float:
    numbers = trial.variant.validation
    return float(numbers.get("label_agreement", numbers.get("token_label_agreement", 0.0)))


def _with_repair(
    trial: Trial,
    chosen: list[str],
    weights: dict[str, int],
    ranked: list[tuple[str, float]],
    failed: Trial,
    seconds: float,
) -> Trial:
    """Record in the recipe what stayed float and what it cost in quantized work."""
    float_weights = sum(weights[n] for n in chosen)
    repair_record: dict[str, Any] = {
        "method": "greedy leave-one-out (NNCF-style), logits NMSE on the texts nearest the decision boundary",
        "float_nodes": chosen,
        "float_nodes_fraction": len(chosen) / len(weights),
        "float_weight_fraction": float_weights / sum(weights.values()),
        "quantizable_nodes": len(weights),
        "agreement_before": _agreement(failed),
        "ranking": [[node, score] for node, score in ranked[: max(8, len(chosen))]],
        "seconds": round(seconds, 1),
    }
    variant = trial.variant
    return Trial(replace(variant, recipe={**variant.recipe, "repair": repair_record}), trial.outputs)
