"""Planning and padding model calls: sort by length, cut into calls, pad each to its own longest sequence.

One planner serves every front end (API, labeller, server): sequences are sorted by token count, longest first,
and cut into calls of at most ``max_items`` sequences and, when ``max_tokens`` is set, at most that many padded
tokens (items × the call's longest). A call whose lengths differ a lot (a batch in file order) is then cut
further into length groups where that saves more padded tokens than a call costs (``split_by_length``). The calls
of one plan may run side by side (``OnnxModel.run_many``); results always come back in input order. With a
batch-invariant variant (int8-static, fp32) neither the plan nor who runs which call changes an answer, only how
fast it comes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["CALL_OVERHEAD_TOKENS", "pad_batch", "plan_batches", "planned_cost", "run_planned", "split_by_length"]


Lengths = Sequence[int] | np.ndarray

# What one more model call costs, in padded tokens, by device. CPU: measured on the 000 stand-in (int8-static,
# 2 threads, NSMC batches of 32 in file order, 3 interleaved rounds): an overhead of 8 tokens gave 705 texts/s, 24
# gave 682, 48 623, 96 558, 192 451, and a sorted plan's speed did not move (870-970); calls are cheap and the
# groups of one plan run side by side. CUDA: a kernel launch per op makes a call cost far more than a few rows of
# padding. Measured on an H200 (fp16, 2,000 texts in file-order calls of 256, run gpu-20261204T165539Z): 000
# gave 4,632 / 20,821 / 40,885 / 41,767 texts/s with an overhead of 0 / 64 / 512 / 4,096 tokens, 004 (KLUE-NER)
# 3,253 / 16,993 / 35,750 / 49,448: on a GPU a call is split only where that saves thousands of padded tokens.
CALL_OVERHEAD_TOKENS = {"cpu": 8, "cuda": 4096}


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


def split_by_length(
    call: np.ndarray, lengths: np.ndarray, overhead: int = CALL_OVERHEAD_TOKENS["cpu"]
) -> list[np.ndarray]:
    """Cut one call (indices sorted longest first) into contiguous length groups that minimise padded tokens plus
    ``overhead`` per group: the optimal segmentation of a sorted list, by dynamic programming. A batch of 32
    texts of 5 to 120 tokens becomes a few groups instead of 32 rows padded to 120; a call of similar lengths
    (a sorted plan's) stays whole."""
    n = len(call)
    if n < 2:
        return [call]
    longest = lengths[call].astype(np.int64)  # descending: a group starting at i is padded to longest[i]
    best = np.zeros(n + 1, dtype=np.int64)
    start = np.zeros(n + 1, dtype=np.int64)
    firsts = np.arange(n, dtype=np.int64)
    for end in range(1, n + 1):  # best[end]: the cheapest cut of call[:end]; the last group is call[i:end]
        costs = best[:end] + (end - firsts[:end]) * longest[:end] + overhead
        i = int(np.argmin(costs))
        best[end], start[end] = costs[i], i
    groups: list[np.ndarray] = []
    end = n
    while end > 0:
        groups.append(call[start[end] : end])
        end = int(start[end])
    return groups[::-1]


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
    call_overhead: int = CALL_OVERHEAD_TOKENS["cpu"],
) -> list[np.ndarray]:
    """Run the planned, padded calls through ``run_many`` (which may run them side by side); returns one output per
    sequence, in input order, with padding positions cut off for per-token outputs ([seq, labels]) and kept whole
    for per-text ones ([labels])."""
    if len(sequences) == 1:
        return [run_many([pad_batch(sequences, pad_token_id)])[0][0]]
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    planned = plan_batches(lengths, max_items, max_tokens)
    calls = [group for call in planned for group in split_by_length(call, lengths, call_overhead)]
    outputs = run_many([pad_batch([sequences[i] for i in indices], pad_token_id) for indices in calls])
    results: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(sequences)
    for indices, output in zip(calls, outputs, strict=True):
        per_token = output.ndim == 3
        for row, index in enumerate(indices):
            results[index] = output[row, : lengths[index]] if per_token else output[row]
    return results
