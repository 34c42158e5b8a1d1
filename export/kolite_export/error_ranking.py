"""Which quantized nodes to keep in float so that the int8-vs-float logit error — and with it the fidelity guard's
τ and the share of rows it re-runs — falls the most.

Accuracy repair (``repair``) ranks nodes by what makes labels flip against PyTorch and stops as soon as the gate
holds. The guard pays for something else: τ is twice the *tail* of |int8 − float logit| over every logit of
held-out rows (``guard_threshold``), so a node that never flips a label but sometimes moves one logit far sets τ
for the whole model. Here the objective is that tail itself, measured as the guard measures it (``logit_error``:
τ / 2), against the float graph the guard falls back to.

Search: lazy greedy over graphs spliced in about a second each (``GraphSplicer.with_float``, no re-quantizing).
Round 0 scores every candidate by how much putting it alone in float lowers the error (its gain). Each later round
re-measures gains on top of the nodes already chosen, best stale gain first, and takes a node as soon as its fresh
gain is still the best — but re-measures at most ``shortlist`` nodes a round and then takes the best fresh one, so a
round costs a few graphs instead of all of them. Re-measuring is needed because the tail is a max: once the node
behind the largest errors is in float, the next tail belongs to another node, whose gain said little while the first
one masked it.
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
    gains: dict[str, float] = {}
    errors: dict[str, float] = {}  # the error behind each node's gain, kept exact (not base - gain)
    for done, node in enumerate(candidates):
        if done and done % 10 == 0:
            progress(f"error ranking: {done}/{len(candidates)} nodes scored alone in float")
        error = _error(splicer, [node], error_of)
        if error is not None:
            gains[node], errors[node] = base - error, error
    order = {node: i for i, node in enumerate(candidates)}
    fresh = set(gains)  # gains measured on top of the nodes chosen so far
    chosen: list[str] = []
    steps: list[ErrorStep] = []
    current, scored = base, len(candidates)
    while len(chosen) < count and gains:
        rescored = 0
        while True:
            best = max(gains, key=lambda n: (gains[n], -order[n]))
            if best in fresh or rescored >= shortlist:
                best = max(fresh & gains.keys(), key=lambda n: (gains[n], -order[n]), default=best)
                break
            error = _error(splicer, [*chosen, best], error_of)
            rescored += 1
            if error is None:  # it spliced alone but not with these: leave it out
                del gains[best]
                if not gains:
                    break
            else:
                gains[best], errors[best] = current - error, error
                fresh.add(best)
        if best not in gains or best not in fresh:
            break
        if stop_when_flat and gains[best] <= 0:
            break  # nothing lowers the tail further: more float would cost speed for no gain
        current = errors[best]
        del gains[best]
        chosen.append(best)
        steps.append(ErrorStep(best, current, scored + rescored))
        fresh, scored = set(), 0
        progress(f"error ranking: {len(chosen)} in float ({best}): logit error {current:.4f} (from {base:.4f})")
    return base, steps


def _error(splicer: GraphSplicer, nodes: list[str], error_of: Callable[[Graph], float]) -> float | None:
    graph = splicer.with_float(nodes)
    return None if graph is None else error_of(graph)
