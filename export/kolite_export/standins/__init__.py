"""Stand-in checkpoints for the five seeds (the hub is unreachable here).

    from kolite_export.standins import build_standin
    build_standin("003", "tiny", "stand-ins/003")

or ``kolite standins --size tiny --out stand-ins``.
"""

from __future__ import annotations

import os
from pathlib import Path

from kolite_export.catalogue import SEEDS, data_path, get_seed
from kolite_export.paths import cache_dir, shared_dir
from kolite_export.standins.presets import SIZES, preset_for
from kolite_export.standins.vocab import learn_wordpiece, read_nsmc_texts

__all__ = ["SIZES", "build_standin", "build_standins", "standin_corpus"]


def standin_corpus(shared: str | os.PathLike[str] | None = None) -> Path:
    """The Korean text the stand-in vocabularies are learnt from."""
    return data_path("nsmc-train", shared_dir(shared) / "data")


def build_standin(
    seed_id: str,
    size: str,
    out: str | os.PathLike[str],
    *,
    shared: str | os.PathLike[str] | None = None,
    vocab_cache: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the ``size`` ("tiny" or "full") stand-in of seed ``seed_id`` into ``out``; returns ``out``."""
    from kolite_export.standins.build import PROBE_TEXTS, write_standin

    seed = get_seed(seed_id)
    preset = preset_for(seed.family, size)
    cache = Path(vocab_cache) if vocab_cache is not None else cache_dir() / "standin-vocab"
    corpus = standin_corpus(shared)
    tok = learn_wordpiece(preset.vocab, corpus, cache)
    probe_texts = read_nsmc_texts(corpus, PROBE_TEXTS) if size == "full" else []
    return write_standin(seed, size, preset, tok, Path(out), probe_texts)


def build_standins(
    out_dir: str | os.PathLike[str],
    size: str = "tiny",
    seeds: tuple[str, ...] = tuple(SEEDS),
    **kwargs: object,
) -> dict[str, Path]:
    """Build several stand-ins into ``out_dir/<seed>``."""
    return {seed: build_standin(seed, size, Path(out_dir) / seed, **kwargs) for seed in seeds}  # type: ignore[arg-type]
