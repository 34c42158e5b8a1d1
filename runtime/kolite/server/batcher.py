"""Dynamic batching: concurrent requests for one model are gathered into one planned set of inference calls.

One worker thread per model owns the model: onnxruntime already parallelises a call over its intra-op threads,
so running several calls at once would only oversubscribe the cores. The event loop never blocks on
inference; it enqueues a ``Job`` and awaits an ``asyncio.Future`` the worker resolves.

Gathering rule (the worker, once the model is free): take queued jobs oldest first while the batch stays
within ``max_batch_tokens`` (the padded tokens its length-sorted calls really cost) and ``max_batch_items``; run as
soon as the next job would not fit, or the oldest job has waited ``max_wait_ms``. The oldest job always
runs, even alone and over budget. Requests that arrive while a batch runs form the next one, so under load
batches grow by themselves and at low load a request waits at most ``max_wait_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kolite.batching import planned_cost
from kolite.errors import ModelUnavailableError, OverloadedError
from kolite.server.config import BatchingConfig

__all__ = ["BatchObserver", "BatchRun", "BatcherClosedError", "DynamicBatcher", "Job", "QueueFullError"]

logger = logging.getLogger("kolite.server")


class QueueFullError(OverloadedError, RuntimeError):
    """The model already holds ``max_queue`` admitted requests, or ``max_queue_tokens`` of their tokens."""


class BatcherClosedError(ModelUnavailableError, RuntimeError):
    """The batcher is shutting down and takes no new work."""


class BatchObserver(Protocol):
    """Where the batcher reports (the Prometheus metrics of one model)."""

    def queue_size(self, waiting: int) -> None: ...

    def batch_done(self, items: int, padded_tokens: int, seconds: float, queue_wait_s: float) -> None: ...


@dataclass(eq=False)
class Job:
    """One request's work: its encoded texts (token ids, tokenized once by the handler).

    The worker fills in how the job ran (``ran``) before it resolves the future: the request's trace spans and
    log lines come from it.
    """

    encoded: Any  # kolite.tokenization.Encoded
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    request_id: str = ""
    enqueued: float = field(default_factory=time.perf_counter)
    enqueued_ns: int = field(default_factory=time.time_ns)
    ran: BatchRun | None = None

    @property
    def lengths(self) -> list[int]:
        return self.encoded.lengths.tolist()

    @property
    def tokens(self) -> int:
        return int(self.encoded.lengths.sum())


@dataclass(frozen=True)
class BatchRun:
    """The inference batch a job ran in: wall-clock start and end (ns since the epoch) and its size."""

    started_ns: int
    finished_ns: int
    requests: int
    items: int
    padded_tokens: int


RunBatch = Callable[[Sequence[Job]], Sequence[Any]]


class DynamicBatcher:
    """Queue + worker thread for one model. ``run_batch(jobs)`` returns one result per job, in order."""

    def __init__(self, name: str, run_batch: RunBatch, config: BatchingConfig, observer: BatchObserver) -> None:
        self.name = name
        self.config = config
        self._run_batch = run_batch
        self._observer = observer
        self._pending: deque[Job] = deque()
        self._admitted = 0  # queued + running
        self._admitted_tokens = 0  # their tokens
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name=f"kolite-batcher-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._closing

    @property
    def admitted(self) -> int:
        return self._admitted

    async def submit(self, encoded: Any, request_id: str = "") -> Job:
        """Queue one request and wait until it ran; the job's future holds its outputs.

        Raises QueueFullError / BatcherClosedError at once. The token budget refuses a request only when others are
        admitted: alone, a request runs however many tokens it has (TEI #662 refused such a text forever).
        """
        loop = asyncio.get_running_loop()
        job = Job(encoded, loop.create_future(), loop, request_id)
        tokens = job.tokens
        config = self.config
        with self._cond:
            if self._closing:
                raise BatcherClosedError(f"model {self.name!r} is shutting down")
            if self._admitted >= config.max_queue:
                raise QueueFullError(
                    f"model {self.name!r} is overloaded: {self._admitted} requests queued or running "
                    f"(max_queue={config.max_queue}); retry later"
                )
            if self._admitted and self._admitted_tokens + tokens > config.max_queue_tokens:
                raise QueueFullError(
                    f"model {self.name!r} is overloaded: {self._admitted_tokens} tokens queued or running and this "
                    f"request brings {tokens} (max_queue_tokens={config.max_queue_tokens}); retry later"
                )
            self._admitted += 1
            self._admitted_tokens += tokens
            self._pending.append(job)
            waiting = len(self._pending)
            self._cond.notify()
        self._observer.queue_size(waiting)
        # If the caller gives up (timeout, disconnect) the future is cancelled and the worker skips the job.
        await job.future
        return job

    def close(self, timeout: float | None = None) -> None:
        """Stop taking work, finish every admitted job, then stop the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # ---- worker thread ----

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._run(batch)

    def _next_batch(self) -> list[Job] | None:
        with self._cond:
            while not self._drop_cancelled():
                if self._closing:
                    return None
                self._cond.wait()
            if not self.config.enabled:
                return self._take(1)
            deadline = self._pending[0].enqueued + self.config.max_wait_ms / 1000.0
            while True:
                count, full = self._fitting()
                remaining = deadline - time.perf_counter()
                if full or self._closing or remaining <= 0:
                    return self._take(count)
                self._cond.wait(remaining)
                if not self._drop_cancelled():
                    return []

    def _drop_cancelled(self) -> int:
        """Forget queued jobs whose caller stopped waiting; returns how many jobs remain. Lock held."""
        if any(job.future.done() for job in self._pending):
            kept = [job for job in self._pending if not job.future.done()]
            self._admitted -= len(self._pending) - len(kept)
            self._admitted_tokens -= sum(job.tokens for job in self._pending if job.future.done())
            self._pending = deque(kept)
            self._observer.queue_size(len(kept))
        return len(self._pending)

    def _fitting(self) -> tuple[int, bool]:
        """How many queued jobs (oldest first) fit in one batch, and whether the batch is full. Lock held.

        A batch's cost is what its planned calls really feed the model: sequences sorted by length and cut into
        calls of at most ``max_call_tokens`` padded tokens, not items x the longest item of the whole batch.
        """
        lengths: list[int] = []
        count = 0
        config = self.config
        for job in self._pending:
            candidate = lengths + job.lengths
            cost = planned_cost(candidate, config.max_batch_items, config.max_call_tokens)
            over = cost > config.max_batch_tokens or len(candidate) > config.max_batch_items
            if over and count:
                return count, True
            lengths, count = candidate, count + 1
        return count, len(lengths) >= config.max_batch_items

    def _take(self, count: int) -> list[Job]:
        batch = [self._pending.popleft() for _ in range(count)]
        self._observer.queue_size(len(self._pending))
        return batch

    def _run(self, batch: list[Job]) -> None:
        started, started_ns = time.perf_counter(), time.time_ns()
        results: Sequence[Any] = ()
        error: BaseException | None = None
        try:
            results = self._run_batch(batch)
            if len(results) != len(batch):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} jobs")
        except Exception as exc:  # delivered to every request of the batch, which answers 500
            ids = ", ".join(job.request_id for job in batch if job.request_id)
            logger.exception("inference failed for a batch of %d requests on %r (request ids: %s)", len(batch),
                             self.name, ids or "-")
            error = exc
        elapsed = time.perf_counter() - started
        lengths = [length for job in batch for length in job.lengths]
        padded = planned_cost(lengths, self.config.max_batch_items, self.config.max_call_tokens)
        self._observer.batch_done(len(lengths), padded, elapsed, started - batch[0].enqueued)
        ran = BatchRun(started_ns, time.time_ns(), len(batch), len(lengths), padded)
        for job in batch:
            job.ran = ran
        # Released before the results are handed over: a client that sends its next request as soon as it has
        # its answer must not find its previous one still counted.
        with self._cond:
            self._admitted -= len(batch)
            self._admitted_tokens -= sum(job.tokens for job in batch)
        loop = batch[0].loop
        with contextlib.suppress(RuntimeError):  # the event loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, batch, results, error)


def _resolve(batch: Sequence[Job], results: Sequence[Any], error: BaseException | None) -> None:
    """Runs on the event loop: hand each job its own result (or the batch's error)."""
    for index, job in enumerate(batch):
        if job.future.done():  # the caller timed out meanwhile
            continue
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(results[index])
