"""One writer per output: ``OUTPUT.lock`` holds an exclusive lock and the holder's pid while a job runs.

Two ``kolite label`` runs on one ``--out`` would each write and join the same parts (one of them dying half-way
with a FileNotFoundError). The lock is an OS file lock (``flock``), so the kernel releases it when its holder dies,
even by ``kill -9``: a dead holder's lock file is simply taken over. The pid in the file is only for the message.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from kolite.errors import KoliteError

__all__ = ["OutputLockedError", "lock_path_for", "output_lock"]


class OutputLockedError(KoliteError):
    """Another process is writing the same output."""


def lock_path_for(output: Path) -> Path:
    return output.with_name(output.name + ".lock")


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[Path]:
    """Hold the lock of ``output`` for the ``with`` block; :class:`OutputLockedError` at once if it is held."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one writer per output is then up to the user
        yield lock_path_for(output)
        return
    path = lock_path_for(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole job
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise OutputLockedError(
                f"{output} is being written by another kolite label ({_holder(path)}); wait for it to finish or "
                f"stop it (a holder that died releases the lock by itself)"
            ) from None
        # The previous holder may have removed the file between our open and our lock: lock the file now there.
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
        handle.flush()
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # still holding the lock: whoever opened the old file re-checks and retries
        handle.close()
