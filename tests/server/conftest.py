"""The server tests' artifacts: one classifier and one NER model, tiny."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def artifacts(tiny_artifact: Callable[[str], Path]) -> dict[str, Path]:
    """``cls``: the tiny 000 classifier; ``ner``: the tiny 004 tagger."""
    return {"cls": tiny_artifact("000"), "ner": tiny_artifact("004")}
