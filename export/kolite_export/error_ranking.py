"""Which quantized nodes to keep in float so that the int8-vs-float logit error — and with it the fidelity guard's
τ and the share of rows it re-runs — falls the most.

Accuracy repair (``repair``) ranks nodes by what makes labels flip against PyTorch and stops as soon as the gate
holds. The guard pays for something else: τ is twice the *tail* of |int8 − float logit| over every logit of
held-out rows (``guard_threshold``), so a node that never flips a label but sometimes moves one logit far sets τ
for the whole model. Here the objective is that tail itself, measured as the guard measures it (``logit_error``:
τ / 2), against the float graph the guard falls back to.

Search: greedy over graphs spliced in about a second each (``GraphSplicer``, no re-quantizing). Every candidate
is first scored by its *own* tail: the error of the float graph with only that node quantized (``quantized_alone``,
repair's leave-one-in). Each round then splices the ``shortlist`` remaining nodes with the largest own tail back
into float on top of the nodes already chosen, measures each graph, and keeps the one that lowers the error most.
Not the cheaper one-shot ranking by leave-one-out (each node alone back in float): the tail is a max over logits,
so while the node behind the largest errors is quantized, putting the runner-up back in float gains nothing and it
would rank last; its own tail shows it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kolite_export.float_swap import GraphSplicer
from kolite_export.guard_threshold import GUARD_QUANTILE, GUARD_SAFETY
from kolite_export.recipes import ERROR_FLOAT_PASS

if TYPE_CHECKING:
    from kolite_export.trial import Trial, Validator
    from kolite_export.variants import VariantSpec

__all__ = ["ErrorStep", "greedy_float_nodes", "logit_error", "with_error_float"]

Graph = Path | bytes
Progress = Callable[[str], None]
SCRATCH = "scratch.error-float.onnx"
RANKING_ROWS = 128  # validation rows the search runs on: never τ's held-out rows, never calibration rows


def logit_error(outputs: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """τ / 2 by the guard's own formula on these rows: max(SAFETY × p(QUANTILE) |Δ|, max |Δ|) over every logit
    (every token's, for NER) of ``outputs`` against the float ``reference``."""
    deltas = np.concatenate(
        [np.abs(np.asarray(o, np.float64) - np.asarray(r, np.float64)).ravel() for o, r in
         zip(outputs, reference, strict=True)]
    )
    if deltas.size == 0:
        return 0.0
    return max(GUARD_SAFETY * float(np.percentile(deltas, GUARD_QUANTILE)), float(deltas.max()))


@dataclass(frozen=True)
class ErrorStep:
    """One greedy step: the node added to float and ``logit_error`` of the graph with it and every earlier one."""

    node: str
    error: float
    graphs_scored: int  # spliced graphs this step ran (the search's cost)


def greedy_float_nodes(
    splicer: GraphSplicer,
    candidates: Sequence[str],
    error_of: Callable[[Graph], float],
    count: int,
    shortlist: int = 6,
    stop_when_flat: bool = True,
    costs: Mapping[str, float] | None = None,
    budget: float = float("inf"),
    progress: Progress = lambda _: None,
) -> tuple[float, list[ErrorStep]]:
    """(error of the fully quantized graph, up to ``count`` greedy steps in order).

    ``error_of(graph)`` runs a graph on the ranking rows and returns ``logit_error`` against the float reference
    (the caller chooses the rows: never the rows τ is then measured on). A candidate the splicer cannot put back in
    float is left out. With ``stop_when_flat`` the search stops early when no remaining node lowers the error;
    without, it goes on to ``count`` (a curve wants every point, even flat ones). With ``costs`` (per node, e.g.
    its share of the quantizable weights) only nodes whose cost fits what is left of ``budget`` are tried."""
    base = _error(splicer, [], error_of)
    if base is None:
        raise ValueError("the quantized graph itself cannot be spliced")
    own: dict[str, float] = {}
    for done, node in enumerate(candidates):
        if done and done % 10 == 0:
            progress(f"error ranking: {done}/{len(candidates)} nodes scored quantized alone")
        alone = splicer.quantized_alone(node)
        own[node] = error_of(alone) if alone is not None else 0.0  # unknown: tried last
    order = {node: i for i, node in enumerate(candidates)}
    remaining = sorted(candidates, key=lambda n: (-own[n], order[n]))
    chosen: list[str] = []
    steps: list[ErrorStep] = []
    current, scored = base, len(candidates) + 1
    spent = 0.0
    while len(chosen) < count and remaining:
        trials: dict[str, float] = {}
        remaining = [n for n in remaining if costs is None or spent + costs[n] <= budget + 1e-12]
        for node in list(remaining):
            if len(trials) == shortlist:
                break
            error = _error(splicer, [*chosen, node], error_of)
            if error is None:  # cannot go back to float here: leave it out
                remaining.remove(node)
            else:
                trials[node] = error
        if not trials:
            break
        best = min(trials, key=lambda n: (trials[n], order[n]))
        if stop_when_flat and trials[best] >= current:
            break  # nothing lowers the tail further: more float would cost speed for no gain
        current = trials[best]
        spent += costs[best] if costs is not None else 0.0
        remaining.remove(best)
        chosen.append(best)
        steps.append(ErrorStep(best, current, scored + len(trials)))
        scored = 0
        progress(f"error ranking: {len(chosen)} in float ({best}): logit error {current:.4f} (from {base:.4f})")
    return base, steps


def _error(splicer: GraphSplicer, nodes: list[str], error_of: Callable[[Graph], float]) -> float | None:
    graph = splicer.with_float(nodes)
    return None if graph is None else error_of(graph)


def with_error_float(validator: Validator, spec: VariantSpec, trial: Trial, budget: float, progress: Progress) -> Trial:
    """``trial`` (passed) rebuilt with more nodes in float — at most ``budget`` of the quantizable weights (≈ int8
    GEMM work per token), chosen by ``greedy_float_nodes`` on validation rows against the PyTorch reference — and
    gated again; the unchanged ``trial`` if nothing fits or the rebuilt graph fails its gate. Either way the recipe
    records the pass (``error_float_pass``, ``error_float_nodes``)."""
    recipe = trial.variant.recipe
    marks: dict[str, Any] = {"error_float_pass": ERROR_FLOAT_PASS, "error_float_nodes": []}
    if budget <= 0 or spec.quantized_scope is None:
        return _with_recipe(trial, marks)
    started = time.perf_counter()
    ctx = validator.ctx
    scope = spec.quantized_scope(ctx)
    excluded = list(recipe.get("nodes_to_exclude", []))
    weights = scope.nodes()
    shares = {node: count / sum(weights.values()) for node, count in weights.items()}
    candidates = [node for node in weights if node not in excluded and shares[node] <= budget]
    if not candidates:
        return _with_recipe(trial, marks)
    splicer = GraphSplicer.open(ctx.workdir / spec.file, scope.graph, scope.op_types)
    total = len(validator.reference)
    rows = sorted({int(i * total / RANKING_ROWS) for i in range(min(RANKING_ROWS, total))})
    reference = [validator.reference[i] for i in rows]
    progress(f"{spec.name}: choosing nodes to keep in float by the int8 logit error (≤ {budget:.1%} of the weights, "
             f"{len(candidates)} fit), on {len(rows)} texts")
    base, steps = greedy_float_nodes(
        splicer, candidates, lambda graph: logit_error(validator.outputs(graph, rows), reference), len(candidates),
        costs=shares, budget=budget, progress=lambda message: progress(f"{spec.name} {message}"),
    )
    chosen = [step.node for step in steps]
    if not chosen:
        return _with_recipe(trial, marks)
    rebuilt = validator.trial(spec, tuple(excluded + chosen), file=SCRATCH)  # what ships: the builder's own graph
    if not rebuilt.variant.passed:
        progress(f"{spec.name}: the graph with {chosen} in float failed its gate; kept without them")
        return _with_recipe(trial, marks)
    shutil.move(ctx.workdir / SCRATCH, ctx.workdir / spec.file)
    record = {
        "method": "greedy on the guard's logit-error tail max(1.5 x p99.99, max) |int8 - reference logit|, "
        "shortlisted by each node's own tail (quantized alone)",
        "weight_budget": budget,
        "float_weight_fraction": sum(shares[node] for node in chosen),
        "ranking_texts": len(rows),
        "logit_error_before": base,
        "logit_error_after": steps[-1].error,
        "seconds": round(time.perf_counter() - started, 1),
    }
    kept = {key: value for key, value in recipe.items() if key == "repair"}  # repair's record stays
    return _with_recipe(rebuilt, {**kept, **marks, "error_float_nodes": chosen, "error_float": record})


def _with_recipe(trial: Trial, fields: dict[str, Any]) -> Trial:
    from kolite_export.trial import Trial

    variant = trial.variant
    return Trial(replace(variant, recipe={**variant.recipe, **fields}), trial.outputs)
