"""Run a Python script with torch, transformers, optimum and the export/bench packages made unimportable.

usage: python scripts/block_heavy_imports.py SCRIPT [ARGS ...]   (or ``-m module [ARGS ...]``)

Proves that whatever SCRIPT exercises works without them, as in a container that has only the runtime.
"""

from __future__ import annotations

import importlib.abc
import runpy
import sys

BLOCKED = ("torch", "transformers", "optimum", "kolite_export", "kolite_bench")


class HeavyImportBlocker(importlib.abc.MetaPathFinder):
    def __init__(self, blocked: tuple[str, ...] = BLOCKED) -> None:
        self.blocked = blocked

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.blocked:
            raise ImportError(f"{fullname} is blocked: the kolite runtime must not import it")
        return None


def main() -> None:
    sys.meta_path.insert(0, HeavyImportBlocker())
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    if sys.argv[1] == "-m":
        sys.argv = sys.argv[2:]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
