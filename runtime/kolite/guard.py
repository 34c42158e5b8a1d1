"""The fidelity guard: int8 speed with the float graph's answers where int8 could change them.

The int8 graph runs every row first. A row whose decision is not certain — its top-1 minus top-2 logit margin is
below the threshold τ that export measured for this graph — is run again in the float graph (``fp32-opt``) in the
same call, and its float logits replace the int8 ones. A label can only flip when the two logits it depends on move
by more than their gap, so with τ above twice the int8 logit error every answer is the float graph's (and the float
graph's are the original's: its gate holds them to a 1e-4 logit tolerance).

The decision reads only the row's own int8 logits, so it is the same whatever batch the row came in: answers stay
bitwise batch-invariant (int8-static and fp32 graphs are). Per-token outputs (NER) are certain only if every token
is; multi-label outputs (sigmoid, a decision per label at 0) use each logit's distance from 0.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kolite.errors import KoliteError

__all__ = ["DEFAULT_MAX_RERUN_FRACTION", "FidelityGuard", "GuardRecord", "decision_margins", "pooled_word_uncertain"]

# guard=None ("auto") turns the guard on when export measured that it re-runs at most this share of rows: there it
# costs about that much more compute (plus the float graph's memory, see docs/guides/fidelity.md); above it the
# int8 error is too large for a guard to be cheap (NER today) and the int8 graph alone is served.
DEFAULT_MAX_RERUN_FRACTION = 0.05


@dataclass(frozen=True)
class GuardRecord:
    """What export measured for one int8 variant (the manifest's ``variants.<name>.guard``)."""

    tau: float
    float_variant: str
    rerun_fraction: float | None = None
    method: str = ""

    @classmethod
    def from_manifest(cls, data: Mapping[str, Any]) -> GuardRecord | None:
        """The record, or None when the variant has none; a malformed one is a clear error."""
        if not data:
            return None
        tau, float_variant = data.get("tau"), data.get("float_variant")
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 <= tau < 1e6 or tau != tau:
            raise KoliteError(f"manifest guard.tau must be a finite number >= 0, got {tau!r}")
        if not isinstance(float_variant, str) or not float_variant:
            raise KoliteError(f"manifest guard.float_variant must name a variant, got {float_variant!r}")
        fraction = data.get("rerun_fraction")
        if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, (int, float))):
            raise KoliteError(f"manifest guard.rerun_fraction must be a number, got {fraction!r}")
        rerun = None if fraction is None else float(fraction)
        return cls(float(tau), float_variant, rerun, str(data.get("method", "")))


def decision_margins(outputs: Sequence[np.ndarray], multi_label: bool = False) -> np.ndarray:
    """Per row, how far its decision is from changing: top-1 minus top-2 logit (the smallest over a row's tokens
    for per-token outputs); for multi-label outputs, the smallest |logit| (each label's decision is logit > 0)."""
    if outputs and not multi_label and all(np.ndim(o) == 1 and len(o) == len(outputs[0]) > 1 for o in outputs):
        # One label vector per row (classification): all rows at once, the same arithmetic as the loop below.
        top2 = np.partition(np.asarray(outputs, dtype=np.float32), -2, axis=-1)[:, -2:]
        return (top2[:, 1] - top2[:, 0]).astype(np.float64)
    margins = np.empty(len(outputs), dtype=np.float64)
    for index, output in enumerate(outputs):
        logits = np.atleast_2d(np.asarray(output, dtype=np.float32))
        if logits.shape[0] == 0 or logits.shape[-1] == 0:
            margins[index] = np.inf
        elif multi_label:
            margins[index] = float(np.abs(logits).min())
        elif logits.shape[-1] == 1:
            margins[index] = np.inf  # one label: nothing to flip to
        else:
            top2 = np.partition(logits, -2, axis=-1)[..., -2:]
            margins[index] = float((top2[..., 1] - top2[..., 0]).min())
    return margins


def pooled_word_uncertain(logits: np.ndarray, kept: np.ndarray, is_subword: np.ndarray, tau: float) -> bool:
    """Whether int8 error below τ/2 per logit could change a word's label under ``average`` or ``max`` aggregation.

    These pool softmax scores over a word's tokens, so a per-token logit margin does not bound them: two tokens
    that are each certain can average to a near tie. Each probability moves by a factor within [e^-τ, e^τ] when
    every logit moves by at most τ/2, so a pooled top-1 score P₁ can lose to P₂ only if P₁ < P₂·e^(2τ) (``average``);
    under ``max`` the winning token can change only if its top score is within that factor of another token's
    with a different label."""
    if len(kept) < 2:
        return False
    scores = np.asarray(logits, dtype=np.float64)[kept]
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    scores /= scores.sum(-1, keepdims=True)
    factor = float(np.exp(2 * tau))
    starts = np.flatnonzero(~np.asarray(is_subword, dtype=bool))
    bounds = [*starts.tolist(), len(kept)] if len(starts) and starts[0] == 0 else [0, *starts.tolist(), len(kept)]
    for begin, end in itertools.pairwise(bounds):
        if end - begin < 2:
            continue
        word = scores[begin:end]
        top2 = np.sort(word.mean(0))[-2:]
        if top2[1] < top2[0] * factor:
            return True
        best = word.max(-1)
        order = np.argsort(best)[::-1]
        first, second = order[0], order[1]
        if word[first].argmax() != word[second].argmax() and best[first] < best[second] * factor:
            return True
    return False


class FidelityGuard:
    """Re-runs uncertain rows of an int8 pass in the float graph; counts what it re-ran (thread-safe)."""

    def __init__(self, record: GuardRecord, float_session: Any, multi_label: bool = False) -> None:
        self.record = record
        self.session = float_session
        self.multi_label = multi_label
        self.rows_checked = 0
        self.rows_rerun = 0
        self._lock = threading.Lock()

    @property
    def tau(self) -> float:
        return self.record.tau

    def apply(
        self,
        sequences: Sequence[Sequence[int]],
        outputs: list[np.ndarray],
        run_float: Callable[[Sequence[Sequence[int]]], list[np.ndarray]],
        window_counts: Sequence[int] | None = None,
        words: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None,
    ) -> list[np.ndarray]:
        """``outputs`` (the int8 pass over ``sequences``) with every uncertain row replaced by its float output.

        ``window_counts`` (sequences per text, in order) matters for long texts classified over several windows: the
        answer is the pooled logits', so a text is also uncertain when its mean- or max-pooled margin is below τ
        (pooling moves no logit further than the windows' own errors), and then all its windows are re-run.

        ``words`` (NER: per sequence, the decoded token positions and their subword flags) adds the word-level
        check of the ``average`` and ``max`` aggregations (``pooled_word_uncertain``); a None entry skips it for
        that sequence (its text's aggregation reads each token's own label)."""
        uncertain_rows = decision_margins(outputs, self.multi_label) < self.record.tau
        if window_counts is not None and len(window_counts) < len(outputs) and np.ndim(outputs[0]) == 1:
            start = 0
            for count in window_counts:
                if count > 1:
                    stacked = np.stack(outputs[start : start + count])
                    pooled = decision_margins([stacked.mean(0), stacked.max(0)], self.multi_label)
                    if pooled.min() < self.record.tau:
                        uncertain_rows[start : start + count] = True
                start += count
        if words is not None:
            for index, word_view in enumerate(words):
                if word_view is None or uncertain_rows[index]:
                    continue
                if pooled_word_uncertain(outputs[index], word_view[0], word_view[1], self.tau):
                    uncertain_rows[index] = True
        uncertain = np.flatnonzero(uncertain_rows)
        with self._lock:
            self.rows_checked += len(outputs)
            self.rows_rerun += len(uncertain)
        if len(uncertain) == 0:
            return outputs
        rerun = run_float([sequences[i] for i in uncertain])
        guarded = list(outputs)
        for index, output in zip(uncertain, rerun, strict=True):
            guarded[int(index)] = output
        return guarded

    def close(self) -> None:
        self.session.close()
