"""Planning and padding model calls: sort by length, cut into calls, pad each to its own longest sequence.

One planner serves every front end (API, labeller, server): sequences are sorted by token count, longest first,
and cut into calls of at most ``max_items`` sequences and, when ``max_tokens`` is set, at most that many padded
tokens (items × the call's longest). The calls of one plan may run side by side (``OnnxModel.run_many``); results
always come back in input order. With a batch-invariant variant (int8-static, fp32) neither the plan nor who runs
which call changes an answer, only how fast it comes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["pad_batch", "plan_batches", "planned_cost", "run_planned"]


Lengths = Sequence[int] | np.ndarray


def plan_batches(lengths: Lengths, max_items: int, max_tokens: int | None = None) -> list[np.ndarray]:
    """Indices of each call, longest sequences first (a too-big call fails on the first call, not the last).

    The sort is stable, so equal-length sequences keep their input order. A single sequence over ``max_tokens``
    still gets its own call.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    if max_tokens is None:
        return [order[begin : begin + max_items] for begin in range(0, len(order), max_items)]
    calls: list[np.ndarray] = []
    begin = 0
    while begin < len(order):
        longest = int(lengths[order[begin]])  # the first of a call is its longest: the order is descending
        items = max(1, min(max_items, max_tokens // max(longest, 1)))
        calls.append(order[begin : begin + items])
        begin += items
    return calls


def planned_cost(lengths: Lengths, max_items: int, max_tokens: int | None = None) -> int:
    """Padded tokens the planned calls would feed the model (what a batch really costs)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return int(sum(len(call) * int(lengths[call[0]]) for call in plan_batches(lengths, max_items, max_tokens)))


def pad_batch(sequences: Sequence[Sequence[int]], pad_token_id: int) -> dict[str, np.ndarray]:
    """``input_ids``/``attention_mask`` int64 [batch, longest]; padded with the model's own pad id (RoBERTa derives
    position ids from it, so the id matters even where attention is masked)."""
    if len(sequences) == 1:  # the latency path: no padding, no per-row copy loop
        input_ids = np.asarray(sequences, dtype=np.int64).reshape(1, -1)
        return {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
    longest = max(len(s) for s in sequences)
    input_ids = np.full((len(sequences), longest), pad_token_id, dtype=np.int64)
    attention_mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = sequence
        attention_mask[row, : len(sequence)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def run_planned(
    sequences: Sequence[Sequence[int]],
    run_many: Callable[[list[dict[str, np.ndarray]]], list[np.ndarray]],
    pad_token_id: int,
    max_items: int,
    max_tokens: int | None = None,
) -> list[np.ndarray]:
    """Run the planned, padded calls through ``run_many`` (which may run them side by side); returns one output per
    sequence, in input order, with padding positions cut off for per-token outputs ([seq, labels]) and kept whole
    for per-text ones ([labels])."""
    if len(sequences) == 1:
        return [run_many([pad_batch(sequences, pad_token_id)])[0][0]]
    lengths = [len(s) for s in sequences]
    calls = plan_batches(lengths, max_items, max_tokens)
    outputs = run_many([pad_batch([sequences[i] for i in indices], pad_token_id) for indices in calls])
    results: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(sequences)
    for indices, output in zip(calls, outputs, strict=True):
        per_token = output.ndim == 3
        for row, index in enumerate(indices):
            results[index] = output[row, : lengths[index]] if per_token else output[row]
    return results
