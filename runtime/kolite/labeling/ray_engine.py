"""The Ray engine: the same job on Ray Data — ``read_*`` → ``map_batches`` (actor pool) → ``write_datasink``.

* Each actor loads the artifact once and runs ONNX Runtime with intra-op threads = the actor's ``num_cpus``.
* Readers hand the actors raw bytes (CSV/TSV cells as ``binary``, JSONL as whole lines) so that decoding,
  bad-row rules and output rendering are exactly the local engine's (same ``error`` messages, same files).
* Every batch becomes one part file, written by a datasink into ``OUTPUT.ray-parts/`` (shared storage on a
  cluster); ``preserve_order`` keeps the parts in input order and the driver joins them into ``OUTPUT``.
* Not resumable at part level: Ray retries failed tasks and restarts dead actors itself; a killed driver means a
  fresh run (the local engine is the resumable one).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kolite.errors import KoliteError
from kolite.labeling.formats import DIALECTS, Chunk, parse_jsonl_line, require_pyarrow
from kolite.labeling.job import LabelJob, check_columns, job_spec
from kolite.labeling.parts import EXTENSIONS, PartStats
from kolite.labeling.predict import Labeler, load_model
from kolite.labeling.progress import Summary
from kolite.labeling.writers import concat_parts, render_part, write_part

__all__ = ["run_ray"]

LINE_COLUMN = "__line"
# Reading and writing are light next to inference: they take no CPU slot, so every CPU can host a model actor
# (otherwise an actor pool that fills the cluster leaves no slot for the reader and the job waits forever).
IO_CPUS = 0


def require_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise KoliteError("--engine ray needs Ray Data: pip install 'kolite[ray]'") from exc
    return ray


def _read(job: LabelJob, fmt: str, header: list[str]) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import ray.data

    path = str(job.input.resolve())
    if fmt == "parquet":
        return ray.data.read_parquet(path, num_cpus=IO_CPUS)
    if fmt == "jsonl":
        # One binary column per line: valid JSON never holds a raw control character, so \x1f never splits a line.
        parse = pacsv.ParseOptions(delimiter="\x1f", quote_char=False, escape_char=False)
        read = pacsv.ReadOptions(column_names=[LINE_COLUMN])
        convert = pacsv.ConvertOptions(column_types={LINE_COLUMN: pa.binary()})
    else:
        quoting = DIALECTS[fmt].get("quoting") != csv.QUOTE_NONE
        parse = pacsv.ParseOptions(delimiter=DIALECTS[fmt]["delimiter"], quote_char='"' if quoting else False)
        read = pacsv.ReadOptions(skip_rows=1, column_names=header)
        convert = pacsv.ConvertOptions(column_types={name: pa.binary() for name in header})
    return ray.data.read_csv(path, parse_options=parse, read_options=read, convert_options=convert, num_cpus=IO_CPUS)


def _decode(value: Any) -> Any:
    return value.decode("utf-8", errors="surrogateescape") if isinstance(value, bytes) else value


class RayLabeler:
    """The actor: one model per actor, one output part per batch."""

    def __init__(
        self, job: LabelJob, variant: str, threads: int, in_format: str, out_format: str, header: list[str]
    ) -> None:
        model = load_model(job.model, variant, job.device, threads)
        self.labeler = Labeler(model, job.prefix, job.batch_size, job.allow_empty)
        self.text_column = job.text_column
        self.in_format, self.out_format, self.header = in_format, out_format, header

    def _chunk(self, batch: Any) -> Chunk:
        if self.in_format == "jsonl":
            chunk = Chunk(0, 0, [], [])
            seen: dict[str, None] = {}
            for i, line in enumerate(batch.column(LINE_COLUMN).to_pylist()):
                row, error = parse_jsonl_line(_decode(line).rstrip("\r"))
                chunk.rows.append(row)
                if error is not None:
                    chunk.read_errors[i] = error
                seen.update(dict.fromkeys(row))
            chunk.columns = list(seen)
            return chunk
        rows = [{k: _decode(v) for k, v in row.items()} for row in batch.to_pylist()]
        if self.in_format == "parquet":
            return Chunk(0, 0, rows, list(batch.schema.names), arrow_schema=batch.schema)
        return Chunk(0, 0, rows, list(self.header))

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        chunk = self._chunk(batch)
        clash = self.labeler.columns.collisions(chunk.columns)
        if clash:
            raise KoliteError(f"the input already has column(s) {clash}; pass --prefix (e.g. --prefix pred_)")
        values = [None if i in chunk.read_errors else r.get(self.text_column) for i, r in enumerate(chunk.rows)]
        results = self.labeler.label_slices(values)
        for i, message in chunk.read_errors.items():
            for name in results:
                results[name][i] = None
            results[self.labeler.columns.error][i] = message
        stats = PartStats.from_results(results, self.labeler.columns.error)
        marker = {"rows": stats.rows, "labelled": stats.labelled, "errors": dict(stats.errors)}
        return pa.table({"data": [render_part(chunk, results, self.out_format)], "stats": [json.dumps(marker)]})


def _datasink(folder: Path, ext: str) -> Any:
    from ray.data import Datasink
    from ray.data.block import BlockAccessor

    class PartsDatasink(Datasink):
        """Writes each rendered part to ``part-<task>-<n>.<ext>`` (+ its stats) in a shared folder."""

        def write(self, blocks: Any, ctx: Any) -> None:
            n = 0
            for block in blocks:
                table = BlockAccessor.for_block(block).to_arrow()
                for data, stats in zip(table["data"].to_pylist(), table["stats"].to_pylist(), strict=True):
                    name = f"part-{ctx.task_idx:06d}-{n:05d}"
                    write_part(folder / f"{name}.{ext}", data)
                    write_part(folder / f"{name}.done.json", stats.encode())
                    n += 1

    return PartsDatasink()


def _layout(ray: Any, job: LabelJob) -> tuple[int, int]:
    threads = job.threads or 1
    if job.workers:
        return job.workers, threads
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, cpus // threads), threads


def run_ray(job: LabelJob) -> Summary:
    """Label ``job.input`` with Ray Data; starts a local Ray unless one is running or ``job.address`` is given."""
    ray = require_ray()
    require_pyarrow()
    if Path(job.model).exists():  # actors run in other working directories (and on other nodes)
        job = dataclasses.replace(job, model=str(Path(job.model).resolve()))
    started = time.perf_counter()
    model = load_model(job.model, job.variant, job.device, 1)  # resolves variant + task on the driver
    spec = job_spec(job, model)
    model.close()
    if job.output.exists() and not job.overwrite:
        raise KoliteError(f"{job.output} already exists; pass --overwrite to replace it")
    columns = check_columns(job, spec.task, spec.input_format)
    header = columns if spec.input_format in DIALECTS and columns else []
    if not ray.is_initialized():
        ray.init(address=job.address, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = job.progress
    folder = job.output.resolve().with_name(job.output.name + ".ray-parts")  # absolute: actors write there
    if folder.exists():
        shutil.rmtree(folder)  # parts of an interrupted Ray run: Ray jobs restart from scratch
    folder.mkdir(parents=True)
    actors, threads = _layout(ray, job)
    dataset = _read(job, spec.input_format, header).map_batches(
        RayLabeler,
        fn_constructor_kwargs={
            "job": job,
            "variant": spec.variant,
            "threads": threads,
            "in_format": spec.input_format,
            "out_format": spec.output_format,
            "header": header,
        },
        batch_size=job.part_rows,
        batch_format="pyarrow",
        concurrency=actors,
        num_cpus=threads,
    )
    dataset.write_datasink(_datasink(folder, EXTENSIONS[spec.output_format]), ray_remote_args={"num_cpus": IO_CPUS})
    parts = sorted(folder.glob(f"part-*.{EXTENSIONS[spec.output_format]}"))
    totals = PartStats()
    for part in parts:
        data = json.loads(part.with_name(part.name.split(".")[0] + ".done.json").read_text())
        totals.add(PartStats(data["rows"], data["labelled"], Counter(data["errors"])))
    concat_parts(parts, job.output, spec.output_format)
    if not job.keep_parts:
        shutil.rmtree(folder, ignore_errors=True)
    return Summary.from_stats(job.output, f"ray {actors}x{threads}", totals, 0, time.perf_counter() - started)
