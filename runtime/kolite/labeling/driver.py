"""The engine-independent half of a labelling job, run by the process that owns the output.

It reads the input in parts (one reader: the same decoding and bad-row rules whatever the engine), hands each
part's slices to a :class:`Runner`, writes each part as soon as its slices are back, and joins the parts. Engines
differ only in their runner: this process or a pool of worker processes (local), actors on a cluster (ray). So
every engine writes the same bytes and every engine resumes from ``OUTPUT.parts/``.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from kolite.errors import KoliteError
from kolite.input_decoding import EncodingChoice
from kolite.labeling.formats import Chunk, get_format, iter_chunks
from kolite.labeling.job import LabelJob, check_columns, choose_input_encoding, job_spec
from kolite.labeling.parts import JobSpec, PartStats, PartStore
from kolite.labeling.predict import OutputColumns, slice_rows
from kolite.labeling.progress import Progress, Summary, count_rows
from kolite.labeling.writers import render_part

__all__ = ["Runner", "announce", "drive"]


class Runner(Protocol):
    """Labels slices of text cells somewhere; results come back through :meth:`collect`, in submission order."""

    slots: int  # slices it labels at once (0: it labels in collect(), one at a time)
    description: str  # e.g. "local 2x1", "ray 8x1"

    def submit(self, values: list[object]) -> Any: ...

    def collect(self, handle: Any) -> dict[str, list[Any]]: ...

    def close(self) -> None: ...


def _text_values(chunk: Chunk, text_column: str) -> list[object]:
    # Rows that could not be read properly are not labelled (their text may be a shifted field).
    return [None if i in chunk.read_errors else row.get(text_column) for i, row in enumerate(chunk.rows)]


def _slices(values: list[object], size: int) -> Iterator[list[object]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _chunks_in_flight(runner: Runner, job: LabelJob) -> int:
    # Enough parts read ahead that every slot has about two slices queued (a big cluster needs several parts).
    if runner.slots == 0:
        return 1
    slices_per_part = max(1, math.ceil(job.part_rows / slice_rows(job.batch_size)))
    return max(2, math.ceil(2 * runner.slots / slices_per_part))


class _Parts:
    """Turns a chunk's labelled slices into its part file (read errors applied) and counts what it holds."""

    def __init__(self, store: PartStore, columns: OutputColumns, fmt: str, runner: Runner, progress: Progress):
        self.store, self.columns, self.fmt, self.runner, self.progress = store, columns, fmt, runner, progress

    def finish(self, chunk: Chunk, handles: list[Any]) -> PartStats:
        pieces = []
        for handle in handles:
            pieces.append(self.runner.collect(handle))
            self.progress.update(len(pieces[-1][self.columns.error]))
        results = {name: [v for piece in pieces for v in piece[name]] for name in self.columns.names}
        for i, message in chunk.read_errors.items():
            for name in results:
                results[name][i] = None
            results[self.columns.error][i] = message
        stats = PartStats.from_results(results, self.columns.error)
        self.store.save(chunk.index, render_part(chunk, results, self.fmt), stats)
        return stats


def _corrupt_message(chunk: Chunk, store: PartStore) -> str:
    reached = chunk.start + len(chunk.rows)
    return (
        f"{chunk.corrupt}: reading stopped at data row {reached + 1:,}; the {reached:,} rows before it are "
        f"labelled and kept in {store.dir} (re-running the same command resumes there; no output file was written)"
    )


def announce(command: str, job: LabelJob, choice: EncodingChoice) -> None:
    """Say on stderr which encoding the input is read in, before any work (a wrong guess shows at once)."""
    if get_format(job.in_format).decoded and choice.how != "given":
        print(f"kolite {command}: reading {job.input.name} as {choice.describe()}", file=sys.stderr)


def drive(
    job: LabelJob,
    model: Any,
    open_runner: Callable[[JobSpec, EncodingChoice], Runner],
    started: float | None = None,
) -> Summary:
    """Run ``job``: ``model`` (loaded by the engine) fixes variant and task; ``open_runner`` makes the runner.

    ``started`` (``time.perf_counter()``): when the engine began, so the summary's time includes its start-up."""
    started = time.perf_counter() if started is None else started
    model.options(**job.model_options)  # an option the model's task does not take: refused before any work
    choice = choose_input_encoding(job)
    announce("label", job, choice)
    spec = job_spec(job, model, choice.encoding)
    check_columns(job, spec.task, spec.input_format, choice.encoding)
    columns = OutputColumns(spec.task, job.prefix)
    store = PartStore(job.output, spec, restart=job.restart, overwrite=job.overwrite)
    if store.completed is not None:  # killed after its output was complete, while removing the parts
        store.cleanup()
        return Summary.from_stats(job.output, "done earlier", store.completed, store.completed.rows, 0.0, choice)
    progress = Progress(count_rows(job.input, spec.input_format, choice), job.progress)
    totals, resumed, count = PartStats(), 0, 0
    runner = open_runner(spec, choice)
    parts = _Parts(store, columns, spec.output_format, runner, progress)
    in_flight = _chunks_in_flight(runner, job)
    pending: deque[tuple[Chunk, list[Any]]] = deque()
    corrupt: Chunk | None = None
    try:
        for chunk in iter_chunks(job.input, spec.input_format, job.part_rows, choice.encoding):
            count += 1
            corrupt = chunk if chunk.corrupt else None
            done = store.finished(chunk.index, len(chunk.rows))
            if done is not None:
                totals.add(done)
                resumed += done.rows
                progress.update(done.rows)
                continue
            clash = columns.collisions(chunk.columns)  # JSONL rows bring their own keys
            if clash:
                raise KoliteError(f"rows {chunk.start}.. already have column(s) {clash}; pass --prefix")
            values = _text_values(chunk, job.text_column)
            pending.append((chunk, [runner.submit(s) for s in _slices(values, slice_rows(job.batch_size))]))
            while len(pending) >= in_flight:
                totals.add(parts.finish(*pending.popleft()))
        while pending:
            totals.add(parts.finish(*pending.popleft()))
    finally:
        runner.close()
        progress.close()
    if corrupt is not None:
        raise KoliteError(_corrupt_message(corrupt, store))
    store.finish(count, totals, keep_parts=job.keep_parts)
    seconds = time.perf_counter() - started
    return Summary.from_stats(job.output, runner.description, totals, resumed, seconds, choice)

