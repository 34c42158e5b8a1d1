"""Real Korean validation texts from the shared data folder (NSMC, KOTE, KLUE-NER)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kolite_export.paths import shared_dir

__all__ = ["READERS", "ValidationSet", "load_validation_set"]


@dataclass(frozen=True)
class ValidationSet:
    """Texts to compare ONNX with PyTorch on; ``labels`` are gold label names where the data has them."""

    name: str
    texts: tuple[str, ...]
    labels: tuple[str, ...] | None = None


NSMC_LABELS = ("negative", "positive")


def _read_nsmc(path: Path) -> ValidationSet:
    texts, labels = [], []
    with path.open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3 and parts[1].strip():
                texts.append(parts[1])
                labels.append(NSMC_LABELS[int(parts[2])])
    return ValidationSet(f"nsmc:{path.name}", tuple(texts), tuple(labels))


def _read_kote(path: Path) -> ValidationSet:
    texts = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[1].strip():
                texts.append(parts[1])
    return ValidationSet(f"kote:{path.name}", tuple(texts))


def _read_klue_ner(path: Path) -> ValidationSet:
    """Sentences rebuilt from KLUE-NER's one-character-per-line format."""
    texts, chars = [], []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.startswith("##"):
                continue
            if not line:
                if chars:
                    texts.append("".join(chars))
                    chars = []
                continue
            chars.append(line.split("\t")[0] if line[0] != "\t" else " ")
    if chars:
        texts.append("".join(chars))
    return ValidationSet(f"klue-ner:{path.name}", tuple(t for t in texts if t.strip()))


READERS: dict[str, tuple[str, Callable[[Path], ValidationSet]]] = {
    "nsmc": ("data/nsmc/ratings_test.txt", _read_nsmc),
    "kote": ("data/kote/test.tsv", _read_kote),
    "klue-ner": ("data/klue-ner/klue-ner-v1.1_dev.tsv", _read_klue_ner),
}


def load_validation_set(
    spec: str, size: int | None = None, shared: str | os.PathLike[str] | None = None
) -> ValidationSet:
    """``spec`` is a known name (nsmc, kote, klue-ner) or a file (NSMC format if it has 3 columns, else one text
    per line). ``size`` takes that many texts spread evenly over the set (deterministic), None = all."""
    if spec in READERS:
        relative, reader = READERS[spec]
        path = shared_dir(shared) / relative
        if not path.is_file():
            raise FileNotFoundError(f"validation data {path} not found: set KOLITE_SHARED or --shared")
        full = reader(path)
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"validation data {spec!r} is neither {', '.join(READERS)} nor a file")
        first = path.open(encoding="utf-8").readline()
        full = _read_nsmc(path) if first.count("\t") == 2 else _read_plain(path)
    if size is None or size >= len(full.texts):
        return full
    step = len(full.texts) / size
    picks = [int(i * step) for i in range(size)]
    labels = tuple(full.labels[i] for i in picks) if full.labels else None
    return ValidationSet(full.name, tuple(full.texts[i] for i in picks), labels)


def _read_plain(path: Path) -> ValidationSet:
    lines = path.read_text(encoding="utf-8").splitlines()
    return ValidationSet(f"file:{path.name}", tuple(line for line in lines if line.strip()))
