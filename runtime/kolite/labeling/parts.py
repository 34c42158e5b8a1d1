"""The resumable output: ``OUTPUT.parts/`` with a job spec, part files and their completion markers.

* ``job.json`` — what the job computes (input fingerprint, model variant + sha256, text column, part size...). A
  re-run whose spec differs is refused instead of mixing two jobs' rows; knobs that do not change the output
  (threads, workers, batch size, engine) are not part of it, so a resumed job may use other ones.
* ``part-000123.<ext>`` — output rows ``[123 * part_rows, 124 * part_rows)``, written to a temporary name and
  renamed, so it exists complete or not at all.
* ``part-000123.done.json`` — written (atomically) after the part; a part counts as finished only with it, and only
  when it holds as many rows as the input chunk it stands for.
* ``.output.tmp`` — the join of the parts, renamed to OUTPUT when complete (a join killed half-way leaves nothing
  beside OUTPUT).
* ``complete.json`` — written once OUTPUT is in place, before the folder is removed; the last file removed. A job
  killed while removing the folder finds it on its next run and only finishes the removal.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from kolite.errors import KoliteError
from kolite.labeling.formats import get_format
from kolite.labeling.writers import concat_parts, write_part

__all__ = ["JobSpec", "PartStats", "PartStore", "error_kind", "parts_dir_for"]

SPEC_FILE = "job.json"
COMPLETE_FILE = "complete.json"
JOIN_FILE = ".output.tmp"


def parts_dir_for(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def error_kind(message: str) -> str:
    """Group error messages for the summary (``row has 4 fields, ...`` → ``row has 4 fields``)."""
    return message.split(" (extra")[0].split(": ")[0]


@dataclass(frozen=True)
class JobSpec:
    """Everything that determines the output rows; two runs with equal specs produce identical parts."""

    input: str
    input_size: int
    input_mtime_ns: int
    input_format: str
    output_format: str
    text_column: str
    model: str
    task: str
    variant: str
    variant_sha256: str
    part_rows: int
    prefix: str = ""
    allow_empty: bool = False
    encoding: str = "utf-8"  # the codec the input is decoded with (chosen once, recorded so a resume agrees)
    model_options: dict[str, Any] = field(default_factory=dict)  # long_text, pooling, stride
    guarded: bool = False  # fidelity guard on: uncertain rows carry the float graph's answers
    spec_version: int = 2

    def differences(self, other: dict[str, Any]) -> list[str]:
        mine = asdict(self)
        # A field a job.json written before it existed lacks reads as its default (guarded=False was then true).
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}
        return [f"{k}: {other.get(k)!r} → {v!r}" for k, v in mine.items() if other.get(k, defaults.get(k)) != v]


@dataclass
class PartStats:
    rows: int = 0
    labelled: int = 0
    errors: Counter = field(default_factory=Counter)

    @classmethod
    def from_results(cls, results: dict[str, list[Any]], error_column: str) -> PartStats:
        errors = [e for e in results[error_column] if e is not None]
        n = len(results[error_column])
        return cls(n, n - len(errors), Counter(error_kind(e) for e in errors))

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "labelled": self.labelled, "errors": dict(self.errors)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartStats:
        return cls(data["rows"], data["labelled"], Counter(data["errors"]))

    def add(self, other: PartStats) -> None:
        self.rows += other.rows
        self.labelled += other.labelled
        self.errors.update(other.errors)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class PartStore:
    """Reads and writes ``OUTPUT.parts/``."""

    def __init__(self, output: Path, spec: JobSpec, restart: bool = False, overwrite: bool = False) -> None:
        self.output = output
        self.spec = spec
        self.dir = parts_dir_for(output)
        self.ext = get_format(spec.output_format).part_suffix
        self.overwrite = overwrite
        self.completed: PartStats | None = None  # set when this very job already wrote OUTPUT
        if restart and self.dir.exists():
            shutil.rmtree(self.dir)
        self._open()

    def _open(self) -> None:
        complete = self.dir / COMPLETE_FILE
        if complete.is_file():
            record = json.loads(complete.read_text(encoding="utf-8"))
            if record["spec"] == asdict(self.spec) and self.output.is_file():
                self.completed = PartStats.from_dict(record["totals"])
                return
            shutil.rmtree(self.dir)  # what is left of a finished job whose output is gone or was another job's
        spec_path = self.dir / SPEC_FILE
        if spec_path.is_file():
            previous = json.loads(spec_path.read_text(encoding="utf-8"))
            changed = self.spec.differences(previous)
            if changed:
                raise KoliteError(
                    f"{self.dir} holds parts of a different job ({'; '.join(changed)}); re-run with the same "
                    "arguments to resume it, or pass --restart to discard those parts"
                )
            return
        if self.output.exists() and not self.overwrite:
            raise KoliteError(f"{self.output} already exists; pass --overwrite to replace it")
        self.dir.mkdir(parents=True, exist_ok=True)
        write_part(spec_path, (json.dumps(asdict(self.spec), ensure_ascii=False, indent=2) + "\n").encode())

    def part_path(self, index: int) -> Path:
        return self.dir / f"part-{index:06d}.{self.ext}"

    def _marker(self, index: int) -> Path:
        return self.dir / f"part-{index:06d}.done.json"

    def finished(self, index: int, rows: int) -> PartStats | None:
        """The stats of part ``index`` if it was completed with ``rows`` rows, else None (it will be redone)."""
        marker = self._marker(index)
        if not (marker.is_file() and self.part_path(index).is_file()):
            return None
        data = json.loads(marker.read_text(encoding="utf-8"))
        if data.get("rows") != rows:
            return None
        return PartStats.from_dict(data)

    def save(self, index: int, data: bytes, stats: PartStats) -> None:
        write_part(self.part_path(index), data)
        write_part(self._marker(index), json.dumps(stats.to_dict()).encode())

    def parts(self, count: int) -> list[Path]:
        return [self.part_path(i) for i in range(count)]

    def finish(self, count: int, totals: PartStats, keep_parts: bool = False) -> None:
        """Join the ``count`` parts into OUTPUT (atomically), then remove the folder unless ``keep_parts``."""
        concat_parts(self.parts(count), self.output, self.spec.output_format, tmp=self.dir / JOIN_FILE)
        if keep_parts:
            return
        record = {"spec": asdict(self.spec), "totals": totals.to_dict()}
        write_part(self.dir / COMPLETE_FILE, json.dumps(record, ensure_ascii=False).encode())
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the folder, ``complete.json`` last: until then a re-run knows that OUTPUT is complete."""
        if not self.dir.is_dir():
            return
        for path in self.dir.iterdir():
            if path.name == COMPLETE_FILE:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        (self.dir / COMPLETE_FILE).unlink(missing_ok=True)
        self.dir.rmdir()


def input_fingerprint(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns
