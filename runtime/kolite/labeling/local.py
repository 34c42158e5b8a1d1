"""The local engine: label slices in this process (1 worker × N threads) or in N worker processes × 1 thread.

The job itself (reading, parts, resume, join) is :func:`kolite.labeling.driver.drive`; this module only decides
the layout and runs the workers. Worker processes die with the labelling process, even after ``kill -9``: each
one exits when its parent is gone (Linux: the kernel's parent-death signal; everywhere: a watchdog thread).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from kolite.errors import KoliteError
from kolite.input_decoding import EncodingChoice
from kolite.labeling.driver import drive
from kolite.labeling.job import LabelJob
from kolite.labeling.parts import JobSpec
from kolite.labeling.predict import Labeler, labeler_settings, load_model
from kolite.labeling.progress import Summary

__all__ = ["PREFERRED_LAYOUT", "choose_layout", "exit_with_parent", "run_local"]

# "threads" = 1 process with all cores as ONNX Runtime intra-op threads; "processes" = one 1-thread worker per core.
# Measured on the 2-core dev machine, 000 stand-in int8 on NSMC rows (README, labelling section): 2 processes x 1
# thread labelled 131-170 rows/s at 3.1-3.3 ms CPU per row, 1 process x 2 threads 88-118 rows/s at 5.1-5.3 ms CPU
# per row (intra-op threads synchronise on every op of these small batches; processes share nothing).
PREFERRED_LAYOUT = "processes"
PARENT_POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)  # the parent is gone (its pool can never collect our results): no cleanup to wait for


def exit_with_parent(parent: int) -> None:
    """End this process as soon as process ``parent`` (which started it) is gone, however it ended.

    A killed parent cannot shut its pool down, and its workers (a loaded model each, ~350 MB) would wait forever
    for work. Linux: PR_SET_PDEATHSIG delivers SIGKILL when the parent exits (it fires when the *thread* that
    started the worker ends: the pool is started and shut down by the thread that runs the job, which outlives
    it). Everywhere (macOS has no such signal): a daemon thread watches the parent id change (reparenting).
    """
    if sys.platform.startswith("linux"):
        import ctypes

        # Without a usable libc prctl the watchdog below still does the job.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # died before we got here
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="kolite-parent-watch", daemon=True).start()


def _init_worker(
    parent: int, model: str, variant: str, device: str, threads: int, labeler: dict[str, Any], guard: bool
) -> None:
    exit_with_parent(parent)
    # Ctrl-C reaches the whole process group: the parent handles it and shuts the pool down; the workers must not
    # each print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _LABELER
    _LABELER = Labeler(load_model(model, variant, device, threads, guard), **labeler)


def _label_in_worker(values: list[object]) -> dict[str, list[Any]]:
    assert _LABELER is not None, "worker not initialised"
    return _LABELER.label(values)


# --- driver side -----------------------------------------------------------------------------------------------
class _LocalRunner:
    """Slices go to a process pool, or (one worker) are labelled lazily in collect() to keep the bar smooth."""

    def __init__(self, job: LabelJob, layout: Layout, labeler: Labeler) -> None:
        self.labeler = labeler
        self.description = f"local {layout.workers}x{layout.threads}"
        self.pool: ProcessPoolExecutor | None = None
        self.slots = 0
        if layout.workers > 1:
            settings = labeler_settings(job, labeler.encoding)
            guarded = labeler.model.guard is not None
            args = (os.getpid(), job.model, labeler.model.variant.name, job.device, layout.threads, settings, guarded)
            # spawn: forking a process that already holds an onnxruntime thread pool is not safe.
            self.pool = ProcessPoolExecutor(
                layout.workers, multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=args
            )
            self.slots = layout.workers

    def submit(self, values: list[object]) -> Any:
        if self.pool is None:
            return values
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


def run_local(job: LabelJob) -> Summary:
    """Label ``job.input`` into ``job.output`` on this machine; resumes from ``OUTPUT.parts/`` when present."""
    started = time.perf_counter()
    layout = choose_layout(job.workers, job.threads)
    # The driver's own model resolves variant/task for the spec and labels in-process when there is one worker.
    model = load_model(job.model, job.variant, job.device, layout.threads, job.guard)

    def open_runner(spec: JobSpec, encoding: EncodingChoice) -> _LocalRunner:
        labeler = Labeler(model, **labeler_settings(job, encoding.name))
        return _LocalRunner(job, layout, labeler)

    try:
        return drive(job, model, open_runner, started)
    finally:
        model.close()
