"""Data-parallel throughput: N one-thread onnxruntime sessions run whole batches side by side.

For throughput jobs (labelling a file, a benchmark's whole-set pass) this beats one session with N intra-op
threads: every op of a small model is too short to split well across threads (each split pays a barrier, and
serial stretches leave cores idle), while whole batches share nothing. A single call keeps one session with N
threads unless it is small (then it runs on the first of these: ``kolite.session.ONE_THREAD_MAX_MACS``).
onnxruntime releases the GIL in ``run``, so plain Python threads suffice; each owns one session.

With a batch-invariant graph (fp32, int8-static) the results are bitwise those of one session, whichever session
runs which batch. Prototype for the integrator: numpy + onnxruntime only, no model API.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kolite.providers import cpu_device
from kolite.session import open_session

__all__ = ["ParallelSessions", "default_session_count"]

Feeds = Mapping[str, np.ndarray]


def default_session_count(cores: int) -> int:
    """One single-thread session per physical core."""
    return max(1, cores)


class ParallelSessions:
    """``count`` CPU sessions of the serialized ``graph``, one intra-op thread each, opened as every kolite session
    is (``kolite.session.open_session``); ``run`` spreads batches over them."""

    def __init__(
        self,
        graph: bytes,
        count: int,
        make_options: Callable[[int], Any],
        name: str = "graph",
        external_data_dir: Path | None = None,
        opened: Sequence[Any] = (),
    ) -> None:
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        # ``opened``: one-thread sessions of this graph made before (the latency lane), adopted as the first ones.
        self.sessions = list(opened)[:count] + [
            open_session(graph, make_options(1), cpu_device(), name, external_data_dir)
            for _ in range(count - min(count, len(opened)))
        ]

    def run(self, batches: Sequence[Feeds], output: str = "logits") -> list[np.ndarray]:
        """``output`` of every batch, in the order given. Give batches sorted by length, longest first or last:
        workers take the next batch when they finish one, so uneven batches balance themselves."""
        results: list[np.ndarray | None] = [None] * len(batches)
        if len(self.sessions) == 1 or len(batches) <= 1:
            return [self.sessions[0].run([output], dict(feeds))[0] for feeds in batches]
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(batches)):
            todo.put(index)
        errors: list[BaseException] = []

        def work(session: Any) -> None:
            while not errors:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = session.run([output], dict(batches[index]))[0]
                except BaseException as exc:  # surfaced in the caller's thread below
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=work, args=(s,), daemon=True) for s in self.sessions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]
