"""A labelling job: its settings, its spec (what identifies its output), and the engine dispatch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolite.errors import KoliteError
from kolite.input_decoding import AUTO, EncodingChoice, check_encoding, choose_encoding
from kolite.labeling.compression import compression_of, open_binary
from kolite.labeling.formats import detect_format, get_format, same_family
from kolite.labeling.lock import output_lock
from kolite.labeling.parts import JobSpec, input_fingerprint
from kolite.labeling.predict import OutputColumns

__all__ = [
    "DEFAULT_PART_ROWS",
    "DEFAULT_STALL_TIMEOUT",
    "LabelJob",
    "check_columns",
    "choose_input_encoding",
    "job_spec",
    "label_file",
]

DEFAULT_PART_ROWS = 10_000
# A Ray job in which no slice finished for this long stops with an error (actors that cannot start, a cluster
# held by another job...). Generous: the first slice waits for actors to start and load the model.
DEFAULT_STALL_TIMEOUT = 300.0


@dataclass(frozen=True)
class LabelJob:
    """Settings of ``kolite label``. ``workers``×``threads`` should match the cores; ``None`` = measured default."""

    input: Path
    output: Path
    model: str
    text_column: str = "document"
    variant: str = "auto"
    device: str = "cpu"
    input_format: str | None = None
    output_format: str | None = None
    batch_size: int = 32
    part_rows: int = DEFAULT_PART_ROWS
    workers: int | None = None
    threads: int | None = None
    prefix: str = ""
    allow_empty: bool = False
    restart: bool = False
    overwrite: bool = False
    keep_parts: bool = False
    progress: bool = True
    engine: str = "local"
    address: str | None = None
    encoding: str = AUTO  # of CSV/TSV/JSONL inputs: auto (BOM, UTF-8, else detected) or a codec name
    stall_timeout: float = DEFAULT_STALL_TIMEOUT  # Ray engine: seconds without progress before giving up
    # Task options; None = not given (the model's default). One that does not apply to the task is refused.
    long_text: str | None = None  # classification: truncate, or windows (logits pooled over overlapping windows)
    pooling: str | None = None  # how a long text's windows combine (long_text="windows"): mean or max
    stride: int | None = None  # window overlap in tokens (NER; classification windows); None: the model's default
    guard: bool | None = None  # fidelity guard (kolite.load's guard; None: the artifact's default)

    @property
    def model_options(self) -> dict[str, Any]:
        """The model's task options this job passes to ``model.predict`` (part of the job spec)."""
        given = {"long_text": self.long_text, "pooling": self.pooling, "stride": self.stride}
        return {name: value for name, value in given.items() if value is not None}

    @property
    def in_format(self) -> str:
        return detect_format(self.input, self.input_format)

    @property
    def out_format(self) -> str:
        if self.output_format:
            return detect_format(self.output, self.output_format)
        fmt = detect_format(self.output) if self.output.suffix else self.in_format
        # tsv-raw in, .tsv out: keep the input's dialect unless told otherwise.
        return self.in_format if same_family(fmt, self.in_format) else fmt

    def check(self) -> None:
        if self.part_rows < 1 or self.batch_size < 1:
            raise KoliteError("--part-rows and --batch-size must be positive")
        if (self.workers is not None and self.workers < 1) or (self.threads is not None and self.threads < 1):
            raise KoliteError("--workers and --threads must be positive")
        if self.input.resolve() == self.output.resolve():
            raise KoliteError("the output must not overwrite the input")
        if compression_of(self.output):
            raise KoliteError("compressed output is not supported; compress the finished file instead")
        if self.stall_timeout <= 0:
            raise KoliteError("--stall-timeout must be positive")
        if self.encoding.lower() != AUTO:
            check_encoding(self.encoding)


def choose_input_encoding(job: LabelJob) -> EncodingChoice:
    """The codec the input is read with (a format that stores its own text, e.g. Parquet: nothing to choose)."""
    if not get_format(job.in_format).decoded:
        return EncodingChoice("utf-8", job.in_format)
    if not job.input.is_file():
        raise KoliteError(f"input file {job.input} not found")
    with open_binary(job.input) as stream:
        return choose_encoding(stream, job.encoding)[0]


def job_spec(job: LabelJob, model: Any, encoding: str = "utf-8") -> JobSpec:
    size, mtime = input_fingerprint(job.input)
    source = Path(job.model)
    return JobSpec(
        input=str(job.input.resolve()),
        input_size=size,
        input_mtime_ns=mtime,
        input_format=job.in_format,
        output_format=job.out_format,
        text_column=job.text_column,
        model=str(source.resolve()) if source.exists() else job.model,
        task=model.manifest.task,
        variant=model.variant.name,
        variant_sha256=model.variant.sha256,
        part_rows=job.part_rows,
        prefix=job.prefix,
        allow_empty=job.allow_empty,
        encoding=encoding,
        model_options=job.model_options,
        guarded=model.guard is not None,
    )


def input_columns(job: LabelJob, fmt: str, encoding: str = "utf-8") -> list[str] | None:
    """The input's column names (CSV/TSV header, Parquet schema); None for JSONL, whose rows name their own."""
    return get_format(fmt).columns(job.input, encoding)


def check_columns(job: LabelJob, task: str, fmt: str, encoding: str = "utf-8") -> list[str] | None:
    """Refuse, before any work, a missing text column or output columns that would overwrite input columns."""
    columns = input_columns(job, fmt, encoding)
    if columns is None:
        return None
    if job.text_column not in columns:
        shown = repr(columns)
        shown = shown if len(shown) <= 300 else shown[:300] + "…"  # a header decoded with a wrong --encoding
        raise KoliteError(
            f"column {job.text_column!r} not found in {job.input}; its columns are {shown} (use --text-column, "
            "or --encoding if the names look garbled)"
        )
    clash = OutputColumns(task, job.prefix).collisions(columns)
    if clash:
        raise KoliteError(
            f"the input already has column(s) {clash}; pass --prefix (e.g. --prefix pred_) so the "
            "output columns get other names"
        )
    return columns


ENGINES = {"local": ("kolite.labeling.local", "run_local"), "ray": ("kolite.labeling.ray_engine", "run_ray")}


def label_file(job: LabelJob) -> Any:
    """Run ``job`` on its engine and return its :class:`~kolite.labeling.progress.Summary`."""
    import importlib

    if job.engine not in ENGINES:
        raise KoliteError(f"unknown engine {job.engine!r}; choose one of {', '.join(ENGINES)}")
    job.check()
    module, function = ENGINES[job.engine]
    with output_lock(job.output):
        return getattr(importlib.import_module(module), function)(job)
