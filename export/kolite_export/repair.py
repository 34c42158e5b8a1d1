"""Accuracy repair: when an int8 variant misses its gate, keep its most harmful quantized nodes in float, as few as
found to be needed, until it passes — or say that nothing under the float budget passes.

Modelled on NNCF's accuracy-controlled quantization (``quantize_with_accuracy_control``: rank the quantized
operations on a ranking subset of the validation data — the items the quantized model gets most wrong — by a
logits error, then revert the highest-ranked to float until the metric holds), with one change measured on the
full-size 002 stand-in: NNCF ranks by *leave-one-out* (revert one node, keep the rest quantized). There, the greedy
search over that ranking did not converge (1 to 8 nodes in float: 98.65–98.95 %, not monotone), probably because
with ~50 nodes sharing the error, reverting one removes ~2 % of it while the others' rounding, which follows its
input, re-draws the rest. kolite ranks by *leave-one-in* instead: each node quantized alone in the float graph, so
its own error is measured without the others' (002: passes with 4 nodes in float).

- Ranking subset: the texts (NER: sentences) whose quantized margin for the original's label is the smallest —
  every flipped text, then those nearest to flipping; 32-128 texts.
- Score: normalised mean squared error of the subset's logits against the PyTorch reference (NNCF's logits
  ranker), with only that node quantized.
- Search: the shortest prefix of the ranking whose graph passes the real gate on the whole validation set,
  found by doubling then bisecting (prefix graphs are spliced, not re-quantized: ``float_swap``); the result is
  then rebuilt by the variant's own builder with ``exclude_nodes`` and validated again, so what ships is what a
  plain export with that recipe writes. Budget: a share of the quantizable weights (≈ the int8 GEMM work per
  token), 25 % by default.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from kolite_export.float_swap import GraphSplicer
from kolite_export.trial import Trial, Validator
from kolite_export.variants import VariantSpec

__all__ = ["ranking_rows", "repair"]

SCRATCH = "scratch.repair.onnx"
MIN_SUBSET, MAX_SUBSET = 32, 128
Progress = Callable[[str], None]


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
    validator: Validator, spec: VariantSpec, splicer: GraphSplicer, failed: Trial, nodes: list[str], progress: Progress
) -> list[tuple[str, float]]:
    """(node, subset NMSE with only that node quantized), most harmful first; ties keep graph order."""
    ctx = validator.ctx
    rows = ranking_rows(validator.reference, failed.outputs or [])
    reference = [validator.reference[i] for i in rows]
    progress(f"{spec.name} repair: ranking {len(nodes)} quantized nodes, each alone, on {len(rows)} texts")
    scores = []
    for done, node in enumerate(nodes):
        if done and done % 10 == 0:
            progress(f"{spec.name} repair: ranked {done}/{len(nodes)}")
        graph = splicer.quantized_alone(node)
        if graph is None:  # this builder's graph does not allow the splice: quantize only that node
            spec.build(ctx, ctx.workdir / SCRATCH, tuple(n for n in nodes if n != node))
            graph = ctx.workdir / SCRATCH
        scores.append((node, _nmse(reference, validator.outputs(graph, rows))))
    order = {node: i for i, node in enumerate(nodes)}
    return sorted(scores, key=lambda item: (-item[1], order[item[0]]))


class _PrefixSearch:
    """Whether the graph with the ``k`` highest-ranked nodes in float passes the gate, remembered per ``k``."""

    def __init__(self, validator: Validator, spec: VariantSpec, splicer: GraphSplicer, ranked: list[str]) -> None:
        self.validator, self.spec, self.splicer, self.ranked = validator, spec, splicer, ranked
        self.results: dict[int, tuple[bool, float]] = {}

    def passes(self, k: int, progress: Progress) -> bool:
        if k not in self.results:
            graph = self.splicer.with_float(self.ranked[:k])
            if graph is None:
                self.spec.build(self.validator.ctx, self.validator.ctx.workdir / SCRATCH, tuple(self.ranked[:k]))
                graph = self.validator.ctx.workdir / SCRATCH
            status, numbers, _ = self.validator.check(self.spec, graph)
            self.results[k] = (status == "passed", _agreement(numbers))
            progress(f"{self.spec.name} repair: {k} node(s) in float, agreement {_agreement(numbers):.4%}: {status}")
        return self.results[k][0]

    def shortest(self, limit: int, progress: Progress) -> int | None:
        """The smallest passing k found by doubling up to ``limit`` and bisecting back; None if none passes."""
        low, k = 0, 1
        while not self.passes(min(k, limit), progress):
            if k >= limit:
                return None
            low, k = k, 2 * k
        high = min(k, limit)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if self.passes(middle, progress) else (middle, high)
        return high


def repair(
    validator: Validator, spec: VariantSpec, failed: Trial, max_float_fraction: float, progress: Progress
) -> Trial:
    """A passing trial with the ranked nodes that were needed in float, or ``failed`` with an error saying that
    nothing under ``max_float_fraction`` of the quantizable weights in float passes."""
    assert spec.quantized_scope is not None
    started = time.perf_counter()
    ctx = validator.ctx
    scope = spec.quantized_scope(ctx)
    weights = scope.nodes()
    splicer = GraphSplicer.open(ctx.workdir / spec.file, scope.graph, scope.op_types)
    ranked = _rank(validator, spec, splicer, failed, list(weights), progress)
    order = [node for node, _ in ranked]
    cumulative = np.cumsum([weights[node] for node in order]) / sum(weights.values())
    limit = int((cumulative <= max_float_fraction + 1e-12).sum())
    search = _PrefixSearch(validator, spec, splicer, order)
    k = search.shortest(limit, progress) if limit else None
    while k is not None and k <= limit:
        trial = validator.trial(spec, tuple(order[:k]), file=SCRATCH)  # what ships: the builder's own graph
        if trial.variant.passed:
            shutil.move(ctx.workdir / SCRATCH, ctx.workdir / spec.file)
            return _with_repair(trial, order[:k], weights, ranked, failed, time.perf_counter() - started)
        progress(f"{spec.name} repair: the rebuilt graph with {k} node(s) in float failed; trying {k + 1}")
        k += 1
    message = (
        f"{failed.variant.validation.get('error')}; accuracy repair found nothing that passes with at most "
        f"{max_float_fraction:.0%} of the quantizable weights (≈ int8 GEMM work) in float "
        f"({limit} of {len(order)} nodes, most harmful first)"
    )
    return Trial(replace(failed.variant, validation={**failed.variant.validation, "error": message}), failed.outputs)


def _agreement(numbers: dict[str, Any]) -> float:
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
    record: dict[str, Any] = {
        "method": "NNCF-style accuracy control: nodes ranked by logits NMSE quantized alone on the texts nearest "
        "the decision boundary; shortest passing prefix",
        "float_nodes": chosen,
        "float_nodes_fraction": len(chosen) / len(weights),
        "float_weight_fraction": sum(weights[n] for n in chosen) / sum(weights.values()),
        "quantizable_nodes": len(weights),
        "agreement_before": _agreement(failed.variant.validation),
        "ranking": [[node, score] for node, score in ranked[: max(8, len(chosen))]],
        "seconds": round(seconds, 1),
    }
    variant = trial.variant
    return Trial(replace(variant, recipe={**variant.recipe, "repair": record}), trial.outputs)
