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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kolite_export.float_swap import GraphSplicer
from kolite_export.guard_threshold import GUARD_QUANTILE, GUARD_SAFETY

__all__ = ["ErrorStep", "greedy_float_nodes", "logit_error"]

Graph = Path | bytes
Progress = Callable[[str], None]


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
    progress: Progress = lambda _: None,
) -> tuple[float, list[ErrorStep]]:
    """(error of the fully quantized graph, up to ``count`` greedy steps in order).

    ``error_of(graph)`` runs a graph on the ranking rows and returns ``logit_error`` against the float reference
    (the caller chooses the rows: never the rows τ is then measured on). A candidate the splicer cannot put back in
    float is left out. With ``stop_when_flat`` the search stops early when no remaining node lowers the error;
    without, it goes on to ``count`` (a curve wants every point, even flat ones)."""
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
    while len(chosen) < count and remaining:
        trials: dict[str, float] = {}
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
        remaining.remove(best)
        chosen.append(best)
        steps.append(ErrorStep(best, current, scored + len(trials)))
        scored = 0
        progress(f"error ranking: {len(chosen)} in float ({best}): logit error {current:.4f} (from {base:.4f})")
    return base, steps


def _error(splicer: GraphSplicer, nodes: list[str], error_of: Callable[[Graph], float]) -> float | None:
    graph = splicer.with_float(nodes)
    return None if graph is None else error_of(graph)
