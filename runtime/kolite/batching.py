"""Length bucketing: sort by token count, pad each batch to its own longest item, restore input order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

__all__ = ["bucketed_batches", "pad_batch", "run_bucketed"]


def bucketed_batches(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Indices of each batch, longest items first (a too-big batch fails on the first call, not the last).

    The sort is stable, so equal-length items keep their input order.
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    for begin in range(0, len(order), batch_size):
        yield order[begin : begin + batch_size]


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


def run_bucketed(
    sequences: Sequence[Sequence[int]],
    run: Callable[[dict[str, np.ndarray]], np.ndarray],
    pad_token_id: int,
    batch_size: int,
) -> list[np.ndarray]:
    """Run ``run`` over length-bucketed padded batches; returns one output per sequence, in input order, with
    padding positions cut off for per-token outputs ([seq, labels]) and kept whole for per-text ones ([labels])."""
    if len(sequences) == 1:
        output = run(pad_batch(sequences, pad_token_id))
        return [output[0]]
    results: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(sequences)
    for indices in bucketed_batches([len(s) for s in sequences], batch_size):
        batch = [sequences[i] for i in indices]
        output = run(pad_batch(batch, pad_token_id))
        per_token = output.ndim == 3
        for row, index in enumerate(indices):
            results[index] = output[row, : len(batch[row])] if per_token else output[row]
    return results
