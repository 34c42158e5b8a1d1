"""The local engine: stream the input in parts, label them with 1 process × N threads or N processes × 1 thread.

Memory stays bounded: one chunk is read at a time, at most two are in flight, and each is written out as a part as
soon as it is labelled. The model's own classify() sorts every slice by length (length-bucketed batches).
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from kolite.errors import KoliteError
from kolite.labeling.formats import Chunk, iter_chunks
from kolite.labeling.job import LabelJob, check_columns, job_spec
from kolite.labeling.parts import PartStats, PartStore
from kolite.labeling.predict import Labeler, load_model, slice_rows
from kolite.labeling.progress import Progress, Summary, count_rows
from kolite.labeling.writers import concat_parts, render_part

__all__ = ["PREFERRED_LAYOUT", "choose_layout", "run_local"]

# "threads" = 1 process with all cores as ONNX Runtime intra-op threads; "processes" = one 1-thread worker per core.
# Measured on the 2-core dev machine, 000 stand-in int8 on NSMC rows (README, labelling section): 2 processes x 1
# thread labelled 131-170 rows/s at 3.1-3.3 ms CPU per row, 1 process x 2 threads 88-118 rows/s at 5.1-5.3 ms CPU
# per row (intra-op threads synchronise on every op of these small batches; processes share nothing).
PREFERRED_LAYOUT = "processes"
CHUNKS_IN_FLIGHT = 2


@dataclass(frozen=True)
class Layout:
    workers: int
    threads: int


def choose_layout(workers: int | None, threads: int | None, cores: int | None = None) -> Layout:
    """Fill in what the user left open so that workers × threads = cores."""
    if cores is None:
        from kolite.session import default_threads

        cores = default_threads()
    if workers is None and threads is None:
        return Layout(cores, 1) if PREFERRED_LAYOUT == "processes" else Layout(1, cores)
    if workers is None:
        return Layout(max(1, cores // threads), threads)  # type: ignore[operator]
    return Layout(workers, threads or max(1, cores // workers))


# --- worker process side: one model per process, loaded once -------------------------------------------------
_LABELER: Labeler | None = None


def _init_worker(model: str, variant: str, device: str, threads: int, prefix: str, batch: int, empty: bool) -> None:
    global _LABELER
    _LABELER = Labeler(load_model(model, variant, device, threads), prefix, batch, empty)


def _label_in_worker(values: list[object]) -> dict[str, list[Any]]:
    assert _LABELER is not None, "worker not initialised"
    return _LABELER.label(values)


# --- driver side -----------------------------------------------------------------------------------------------
def _text_values(chunk: Chunk, text_column: str) -> list[object]:
    # Rows that could not be read properly are not labelled (their text may be a shifted field).
    return [None if i in chunk.read_errors else row.get(text_column) for i, row in enumerate(chunk.rows)]


def _apply_read_errors(chunk: Chunk, results: dict[str, list[Any]], labeler: Labeler) -> None:
    for i, message in chunk.read_errors.items():
        for name in results:
            results[name][i] = None
        results[labeler.columns.error][i] = message


def _slices(values: list[object], size: int) -> Iterator[list[object]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _merge(pieces: list[dict[str, list[Any]]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    return {name: [v for piece in pieces for v in piece[name]] for name in names}


class _Runner:
    """Submits slices either to a process pool or to the in-process labeler; results come back in input order."""

    def __init__(self, job: LabelJob, layout: Layout, labeler: Labeler) -> None:
        self.labeler = labeler
        self.pool: ProcessPoolExecutor | None = None
        if layout.workers > 1:
            args = (
                job.model,
                labeler.model.variant.name,
                job.device,
                layout.threads,
                job.prefix,
                job.batch_size,
                job.allow_empty,
            )
            # spawn: forking a process that already holds an onnxruntime thread pool is not safe.
            self.pool = ProcessPoolExecutor(
                layout.workers, multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=args
            )

    def submit(self, values: list[object]) -> Future | dict[str, list[Any]]:
        if self.pool is None:
            return values  # type: ignore[return-value]  # labelled lazily in collect(), keeping the bar smooth
        return self.pool.submit(_label_in_worker, values)

    def collect(self, handle: Any) -> dict[str, list[Any]]:
        if isinstance(handle, Future):
            try:
                return handle.result()
            except BrokenProcessPool as exc:
                raise KoliteError(
                    "a labelling worker process died (out of memory? killed?); finished parts are "
                    "kept: re-run the same command to resume"
                ) from exc
        return self.labeler.label(handle)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _finish(
    store: PartStore, runner: _Runner, chunk: Chunk, handles: list[Any], fmt: str, progress: Callable[[int], None]
) -> PartStats:
    pieces = []
    for handle in handles:
        pieces.append(runner.collect(handle))
        progress(len(pieces[-1][runner.labeler.columns.error]))
    results = _merge(pieces, runner.labeler.columns.names) if pieces else {n: [] for n in runner.labeler.columns.names}
    _apply_read_errors(chunk, results, runner.labeler)
    stats = PartStats.from_results(results, runner.labeler.columns.error)
    store.save(chunk.index, render_part(chunk, results, fmt), stats)
    return stats


def run_local(job: LabelJob) -> Summary:
    """Label ``job.input`` into ``job.output`` on this machine; resumes from ``OUTPUT.parts/`` when present."""
    started = time.perf_counter()
    layout = choose_layout(job.workers, job.threads)
    # The driver's own model resolves variant/task for the spec and labels in-process when there is one worker.
    model = load_model(job.model, job.variant, job.device, layout.threads)
    labeler = Labeler(model, job.prefix, job.batch_size, job.allow_empty)
    spec = job_spec(job, model)
    check_columns(job, spec.task, spec.input_format)
    store = PartStore(job.output, spec, restart=job.restart, overwrite=job.overwrite)
    progress = Progress(count_rows(job.input, spec.input_format), job.progress)
    totals, resumed, count = PartStats(), 0, 0
    runner = _Runner(job, layout, labeler)
    pending: deque[tuple[Chunk, list[Any]]] = deque()
    try:
        for chunk in iter_chunks(job.input, spec.input_format, job.part_rows):
            count += 1
            done = store.finished(chunk.index, len(chunk.rows))
            if done is not None:
                totals.add(done)
                resumed += done.rows
                progress.update(done.rows)
                continue
            clash = labeler.columns.collisions(chunk.columns)  # JSONL rows bring their own keys
            if clash:
                raise KoliteError(f"rows {chunk.start}.. already have column(s) {clash}; pass --prefix")
            values = _text_values(chunk, job.text_column)
            pending.append((chunk, [runner.submit(s) for s in _slices(values, slice_rows(job.batch_size))]))
            while len(pending) >= CHUNKS_IN_FLIGHT or (pending and runner.pool is None):
                totals.add(_finish(store, runner, *pending.popleft(), spec.output_format, progress.update))
        while pending:
            totals.add(_finish(store, runner, *pending.popleft(), spec.output_format, progress.update))
    finally:
        runner.close()
        progress.close()
        model.close()
    concat_parts(store.parts(count), job.output, spec.output_format)
    if not job.keep_parts:
        store.cleanup()
    return Summary.from_stats(
        job.output, f"local {layout.workers}x{layout.threads}", totals, resumed, time.perf_counter() - started
    )
