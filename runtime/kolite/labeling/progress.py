"""Progress bar (tqdm on stderr, rate + ETA) and the end-of-job summary."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolite.input_decoding import EncodingChoice
from kolite.labeling.formats import get_format
from kolite.labeling.parts import PartStats

__all__ = ["Progress", "Summary", "count_rows"]


def count_rows(path: Path, fmt: str, encoding: EncodingChoice | None = None) -> int | None:
    """Rows in the input, for the ETA, as its format counts them (Parquet metadata, or a fast newline count: CSV
    cells may hold quoted newlines and JSONL blank lines, an estimate good enough for an ETA)."""
    return get_format(fmt).count_rows(path, encoding)


class Progress:
    """tqdm when installed (kolite[label]), else one line every few seconds; silent with ``enabled=False``."""

    def __init__(self, total: int | None, enabled: bool = True) -> None:
        self._bar: Any = None
        self._done = 0
        self._total = total
        self._enabled = enabled
        self._last_print = 0.0
        self._start = time.perf_counter()
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(
            total=total,
            unit="rows",
            unit_scale=True,
            dynamic_ncols=True,
            file=sys.stderr,
            desc="labelling",
            smoothing=0.1,
        )

    def update(self, rows: int) -> None:
        self._done += rows
        if self._bar is not None:
            self._bar.update(rows)
        elif self._enabled and time.perf_counter() - self._last_print > 5:
            self._last_print = time.perf_counter()
            rate = self._done / max(time.perf_counter() - self._start, 1e-9)
            print(f"labelling: {self._done}/{self._total or '?'} rows, {rate:.0f} rows/s", file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclass
class Summary:
    """What a job did: printed at the end, and returned by :func:`kolite.labeling.label_file`."""

    output: str
    engine: str
    rows: int = 0
    labelled: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    resumed_rows: int = 0  # rows found in finished parts of an earlier run
    seconds: float = 0.0
    rows_per_second: float = 0.0  # rows labelled by this run / its wall time
    encoding: str = ""  # how the input was decoded, e.g. "CP949 encoding (detected: ...)"

    @classmethod
    def from_stats(
        cls,
        output: Path,
        engine: str,
        stats: PartStats,
        resumed: int,
        seconds: float,
        encoding: EncodingChoice | None = None,
    ) -> Summary:
        fresh = stats.rows - resumed
        return cls(
            str(output),
            engine,
            stats.rows,
            stats.labelled,
            dict(stats.errors.most_common()),
            resumed,
            round(seconds, 3),
            round(fresh / seconds, 1) if seconds > 0 else 0.0,
            encoding.describe() if encoding is not None else "",
        )

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_json(self) -> str:
        data = {**self.__dict__, "error_rows": self.error_count}
        return json.dumps(data, ensure_ascii=False)

    def render(self) -> str:
        lines = [
            f"labelled {self.labelled}/{self.rows} rows → {self.output} ({self.engine} engine)",
            f"  errors: {self.error_count}" + "".join(f"\n    {n:>8}  {kind}" for kind, n in self.errors.items()),
            f"  time: {self.seconds:.1f} s, {self.rows_per_second:.1f} rows/s",
        ]
        if self.resumed_rows:
            lines.append(f"  resumed: {self.resumed_rows} rows were already done by an earlier run")
        return "\n".join(lines)
