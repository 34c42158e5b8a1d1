"""``python -m kolite.server ARTIFACT ...``: the same as ``kolite serve``."""

from __future__ import annotations

import sys

from kolite.server.cli import main

if __name__ == "__main__":
    sys.exit(main())
