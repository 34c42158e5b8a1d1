"""The fidelity guard: int8 speed with the float graph's answers where int8 could change them.

The int8 graph runs every row first. A row whose decision is not certain — its top-1 minus top-2 logit margin is
below the threshold τ that export measured for this graph — is run again in the float graph (``fp32-opt``) in the
same call, and its float logits replace the int8 ones. A label can only flip when the two logits it depends on move
by more than their gap, so with τ above twice the int8 logit error every answer is the float graph's (and the float
graph's are the original's: its gate holds them to a 1e-4 logit tolerance).

The decision reads only the row's own int8 logits, so it is the same whatever batch the row came in: answers stay
bitwise batch-invariant (int8-static and fp32 graphs are). Multi-label outputs (sigmoid, a decision per label at 0)
use each logit's distance from 0. Per-token outputs (NER) are certain when no label the bound lets a unit reach
(a token, or a word under ``first``/``average``/``max``) could change an entity's type or span under the
aggregation in use (``entities_could_change``); with the aggregation unknown (raw logits), or ``none`` (every
token's label is the answer), or a text split over several windows, only if every token and pooled word is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kolite.aggregation import WORD_POOLING, LabelScheme, groups_fixed
from kolite.errors import KoliteError

__all__ = [
    "DEFAULT_MAX_RERUN_FRACTION",
    "DecodeView",
    "FidelityGuard",
    "GuardRecord",
    "decision_margins",
    "entities_could_change",
    "pooled_word_uncertain",
    "reachable_labels",
]

# Aggregations whose answer is entity types and spans (BIO groups), so a label may waver where no group moves.
ENTITY_AGGREGATIONS = ("simple", "first", "average", "max")

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
    # The bound the pooled-word checks use (NER average/max compare softmax scores, which every logit moves);
    # artifacts from before it was recorded have one τ for both.
    tau_pooled: float | None = None

    @property
    def pooled_tau(self) -> float:
        return self.tau if self.tau_pooled is None else self.tau_pooled

    @classmethod
    def from_manifest(cls, data: Mapping[str, Any]) -> GuardRecord | None:
        """The record, or None when the variant has none; a malformed one is a clear error."""
        if not data:
            return None
        tau, float_variant = data.get("tau"), data.get("float_variant")
        tau_pooled = data.get("tau_pooled")
        for key, value in (("tau", tau), ("tau_pooled", tau_pooled)):
            if value is None and key == "tau_pooled":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e6 or value != value:
                raise KoliteError(f"manifest guard.{key} must be a finite number >= 0, got {value!r}")
        if not isinstance(float_variant, str) or not float_variant:
            raise KoliteError(f"manifest guard.float_variant must name a variant, got {float_variant!r}")
        fraction = data.get("rerun_fraction")
        if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, (int, float))):
            raise KoliteError(f"manifest guard.rerun_fraction must be a number, got {fraction!r}")
        rerun = None if fraction is None else float(fraction)
        pooled = None if tau_pooled is None else float(tau_pooled)
        return cls(float(tau), float_variant, rerun, str(data.get("method", "")), pooled)


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


def pooled_word_uncertain(
    logits: np.ndarray, kept: np.ndarray, is_subword: np.ndarray, tau: float, tau_pooled: float | None = None
) -> bool:
    """Whether int8 error within the guard's bounds could change some word's label under ``average`` or ``max``
    aggregation (``reachable_labels``: a word with more than one reachable label). These pool softmax scores over a
    word's tokens, so a per-token logit margin does not bound them: two tokens that are each certain can average to
    a near tie."""
    if len(kept) < 2:
        return False
    kept_logits = np.asarray(logits)[kept]
    opens_word = ~np.asarray(is_subword, dtype=bool)
    opens_word[0] = True
    pooled = np.diff(np.append(np.flatnonzero(opens_word), len(kept))) > 1  # one-token words: token margins
    return any(
        bool((reachable_labels(kept_logits, is_subword, pooling, tau, tau_pooled)[pooled].sum(axis=1) > 1).any())
        for pooling in WORD_POOLING
    )


@dataclass(frozen=True)
class DecodeView:
    """What one sequence's decode reads (NER): the non-special token positions, their subword flags (the decode's
    own rule), the text's aggregation (None: unknown) and label scheme, and whether the text has one window (the
    merge of overlapping windows compares scores, which no label bound covers: such texts get every check)."""

    kept: np.ndarray
    is_subword: np.ndarray
    aggregation: str | None
    scheme: LabelScheme | None
    single_window: bool = True


def reachable_labels(
    logits: np.ndarray, is_subword: np.ndarray, aggregation: str, tau: float, tau_pooled: float | None = None
) -> np.ndarray:
    """Per unit the decode labels (a token for ``simple``, a word for ``first``/``average``/``max``), the labels it
    could take if every logit moved by less than τ/2: bool [units, labels]; ``logits`` are the kept tokens'.

    A token's label j is reachable when top − l_j < τ (τ bounds the error of such a gap). A pooled word's scores
    move by a factor within [e^-τp, e^τp] (τp = ``tau_pooled``, default τ: each logit moves by at most τp/2):
    under ``average`` j is reachable when P_top < P_j·e^(2τp); under ``max`` any token whose best score is within
    that factor of the word's best could become the word's, with any label reachable for that token."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(axis=-1, keepdims=True)
    tokens = ((top - logits) < tau) | (logits == top)
    if aggregation == "simple" or len(logits) == 0:
        return tokens
    opens_word = ~np.asarray(is_subword, dtype=bool)
    opens_word[0] = True
    firsts = np.flatnonzero(opens_word)
    if aggregation == "first":
        return tokens[firsts]
    if aggregation not in WORD_POOLING:
        raise KoliteError(f"no label bound for aggregation {aggregation!r}")
    units = tokens[firsts].copy()
    factor = float(np.exp(2 * (tau if tau_pooled is None else tau_pooled)))
    ends = [*firsts[1:].tolist(), len(logits)]
    for unit, (begin, end) in enumerate(zip(firsts.tolist(), ends, strict=True)):
        if end - begin < 2:
            continue  # a one-token word's pooled scores are its own: the token bound holds
        scores = np.exp(logits[begin:end] - top[begin:end])
        scores /= scores.sum(axis=-1, keepdims=True)
        if aggregation == "average":
            pooled = scores.mean(axis=0)
            units[unit] = pooled * factor > pooled.max()
            units[unit, pooled.argmax()] = True
        else:
            best = scores.max(axis=-1)
            contenders = best * factor > best.max()
            contenders[best.argmax()] = True
            units[unit] = tokens[begin:end][contenders].any(axis=0)
    return units


def entities_could_change(logits: np.ndarray, view: DecodeView, tau: float, tau_pooled: float | None = None) -> bool:
    """Whether int8 error below τ/2 per logit could change this sequence's entities (types and spans) under its
    aggregation; the caller has checked that the aggregation is one of ``ENTITY_AGGREGATIONS`` and the text has
    one window. Scores are not covered: a certain row keeps its int8 scores."""
    assert view.scheme is not None and view.aggregation is not None
    kept_logits = np.asarray(logits)[view.kept]
    reachable = reachable_labels(kept_logits, view.is_subword, view.aggregation, tau, tau_pooled)
    return not groups_fixed(reachable, view.scheme)


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
        views: Sequence[DecodeView | None] | None = None,
    ) -> list[np.ndarray]:
        """``outputs`` (the int8 pass over ``sequences``) with every uncertain row replaced by its float output.

        ``window_counts`` (sequences per text, in order) matters for long texts classified over several windows: the
        answer is the pooled logits', so a text is also uncertain when its mean- or max-pooled margin is below τ
        (pooling moves no logit further than the windows' own errors), and then all its windows are re-run.

        ``views`` (NER: per sequence, what its decode reads, ``DecodeView``) replaces the token-margin rule by
        ``entities_could_change`` where the aggregation's answer is entity groups and the text has one window, and
        adds the pooled-word check (``pooled_word_uncertain``) where the aggregation is unknown or pools words; a
        None entry keeps the token-margin rule alone (``none``: every token's label is the answer)."""
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
        for index, view in enumerate(views or ()):
            if view is None:
                continue
            if view.aggregation in ENTITY_AGGREGATIONS and view.single_window and view.scheme is not None:
                uncertain_rows[index] = entities_could_change(outputs[index], view, self.tau, self.record.pooled_tau)
            elif not uncertain_rows[index] and view.aggregation in (None, *WORD_POOLING):
                uncertain_rows[index] = pooled_word_uncertain(
                    outputs[index], view.kept, view.is_subword, self.tau, self.record.pooled_tau
                )
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
