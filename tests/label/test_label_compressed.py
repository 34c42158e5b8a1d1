"""Compressed inputs and one writer per output (issue 21, item 4).

.gz/.bz2/.xz inputs label like the plain file; a truncated or corrupt one is a one-line error naming the row
reached, the rows before it are kept in OUTPUT.parts/ and a re-run resumes instead of relabelling them. A second
``kolite label`` on an ``--out`` that another live process writes refuses at once; a dead holder's lock is taken
over.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kolite.cli import main

COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
ROWS = [f"영화 {i}번 정말 재밌어요" if i % 2 else f"{i}번째 리뷰: 별로" for i in range(400)]


def body() -> bytes:
    return ("id,document\n" + "".join(f"{i},{text}\n" for i, text in enumerate(ROWS))).encode("utf-8")


def label(artifact: Path, source: Path, out: Path, *extra: str) -> int:
    args = ["label", str(source), "--model", str(artifact), "--out", str(out), "--workers", "1", "--no-progress"]
    return main([*args, *extra])


@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_compressed_input_labels_like_the_plain_file(tiny_artifact, tmp_path, suffix):
    artifact = tiny_artifact("000")
    plain = tmp_path / "in.csv"
    plain.write_bytes(body())
    packed = tmp_path / f"in.csv{suffix}"
    packed.write_bytes(COMPRESS[suffix](body()))
    assert label(artifact, plain, tmp_path / "plain.csv") == 0
    assert label(artifact, packed, tmp_path / "packed.csv") == 0
    assert (tmp_path / "packed.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()


@pytest.mark.parametrize("suffix", [".gz", ".xz"])  # streams that hand out data before their end
def test_truncated_input_keeps_the_rows_before_and_resumes(tiny_artifact, tmp_path, capsys, suffix):
    artifact = tiny_artifact("000")
    data = COMPRESS[suffix](body())
    source = tmp_path / f"in.csv{suffix}"
    source.write_bytes(data[: len(data) * 3 // 4])
    out = tmp_path / "out.csv"
    assert label(artifact, source, out, "--part-rows", "50") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2  # the encoding line + the error
    message = err.strip().splitlines()[-1]
    assert "corrupt or truncated" in message and "reading stopped at data row" in message and "re-run" in message
    reached = int(message.split("data row ")[1].split(";")[0].replace(",", "")) - 1
    assert 0 < reached < len(ROWS) and not out.exists()
    parts = sorted((tmp_path / "out.csv.parts").glob("part-*.csv"))
    assert len(parts) == -(-reached // 50)
    kept = [line.split(",")[1] for p in parts for line in p.read_text(encoding="utf-8").splitlines()[1:]]
    assert kept == ROWS[:reached]

    before = {p.name: p.stat().st_mtime_ns for p in parts}
    assert label(artifact, source, out, "--part-rows", "50") == 2  # resumes: nothing relabelled, same error
    assert message in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in parts} == before


@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_corrupt_stream_is_one_clear_line(tiny_artifact, tmp_path, capsys, suffix):
    data = bytearray(COMPRESS[suffix](body()))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xa5" * 64
    source = tmp_path / f"in.csv{suffix}"
    source.write_bytes(bytes(data))
    assert label(tiny_artifact("000"), source, tmp_path / "out.csv") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "corrupt or truncated" in err.strip().splitlines()[-1]
    assert not (tmp_path / "out.csv").exists()


def test_compressed_output_is_refused(tiny_artifact, tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_bytes(body())
    assert label(tiny_artifact("000"), source, tmp_path / "out.csv.xz") == 2
    assert "compressed output is not supported" in capsys.readouterr().err


HOLDER = """
import sys
from pathlib import Path
from kolite.labeling.lock import output_lock
with output_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_second_writer_on_the_same_out_is_refused(tiny_artifact, tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_bytes(body())
    out = tmp_path / "out.csv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert label(tiny_artifact("000"), source, out) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "being written by another kolite label" in err[0] and f"pid {holder.pid}" in err[0]
        assert not out.exists() and not (tmp_path / "out.csv.parts").exists()
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding the lock: the kernel releases it
        holder.wait()
    assert (tmp_path / "out.csv.lock").exists()  # left behind by the killed holder...
    assert label(tiny_artifact("000"), source, out) == 0  # ...and taken over
    assert out.read_text(encoding="utf-8").count("\n") == len(ROWS) + 1
    assert not (tmp_path / "out.csv.lock").exists()
