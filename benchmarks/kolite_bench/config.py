"""What a benchmark run measures: the seed models (the catalogue's), the contenders, and the settings of one run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kolite_export.catalogue import SEEDS, SeedModel
from kolite_export.paths import repo_root, shared_dir

__all__ = [
    "PEERS",
    "REPO_ROOT",
    "SEEDS",
    "BenchConfig",
    "SeedModel",
    "all_contenders",
    "kolite_contenders",
    "kolite_variant",
    "shared_dir",
]

REPO_ROOT = repo_root()
PEERS = ("openvino-int8-latency", "openvino-int8-throughput", "optimum-int8", "pipeline", "torch-longest", "torch")


# An int8 variant also runs with its fidelity guard on (uncertain rows re-run in the float graph): the guard's cost
# and its answers, side by side with the same variant unguarded.
GUARDED_SUFFIX = "-guarded"


def kolite_contenders() -> tuple[str, ...]:
    """``kolite-<variant>`` for every registered variant (CPU variants by auto rank first, then the rest), each int8
    one followed by ``kolite-<variant>-guarded``."""
    from kolite_export.variants import VARIANTS

    def order(name: str) -> tuple[bool, int]:
        spec = VARIANTS[name]
        return "CPUExecutionProvider" not in spec.providers, spec.rank if spec.rank is not None else 1_000

    names: list[str] = []
    for name in sorted(VARIANTS, key=order):
        names.append(f"kolite-{name}")
        if VARIANTS[name].precision == "int8":
            names.append(f"kolite-{name}{GUARDED_SUFFIX}")
    return tuple(names)


def kolite_variant(contender: str) -> tuple[str, bool]:
    """The variant and the guard switch of a ``kolite-<variant>[-guarded]`` contender."""
    variant = contender.removeprefix("kolite-")
    guarded = variant.endswith(GUARDED_SUFFIX)
    return variant.removesuffix(GUARDED_SUFFIX), guarded


def all_contenders() -> tuple[str, ...]:
    """Every contender the harness knows, in the order they run (cheap ones first so a long run yields early
    numbers): kolite's registered variants, then the peers."""
    return (*kolite_contenders(), *PEERS)


# The seed-card recipe (padding="max_length", max_length=128): the "original" every agreement is measured against.
REFERENCE = "torch"
FALLBACK_REFERENCE = "torch-longest"


@dataclass(frozen=True)
class BenchConfig:
    """Settings of one ``kolite bench`` run (all recorded in the results file)."""

    seed: SeedModel
    artifact: Path
    source: str  # local folder of the PyTorch original, or a hub id
    source_kind: str  # "hub" | "trained-standin" | "standin" | "local" (a folder of unknown provenance)
    contenders: tuple[str, ...]
    out_dir: Path
    threads: int = 2
    batch_size: int = 32
    limit: int | None = None
    # Per-contender cap on the texts of the throughput/accuracy pass (e.g. the slow seed recipe), {} = whole set.
    contender_limits: dict[str, int] = field(default_factory=dict)
    latency_texts: int = 300
    latency_repeats: int = 3
    warmup: int = 1  # untimed passes over the latency texts before timing (every input shape seen once)
    # Speed rounds: each round every contender runs alone in a fresh process (rotated order): bs1 over the latency
    # texts, then length-sorted and file-order batch passes over that round's group of texts.
    rounds: int = 3
    throughput_texts: int = 1024
    sweep_batch_sizes: tuple[int, ...] = (1, 8, 32, 64)
    sweep_texts: int = 384
    cold_start_repeats: int = 3
    max_length: int = 128
    quick: bool = False
    resume: str | None = None  # run id whose finished contenders are reused
    gemm: bool = True
    install_size: bool = True
    # Time variants that failed their export gate too (marked in every table): speed does not depend on the weights,
    # and an untrained stand-in's int8 may fail a gate a trained model passes.
    include_failed: bool = False
    data_dir: Path = field(default_factory=lambda: shared_dir() / "data")

    @property
    def stand_in(self) -> bool:
        return self.source_kind in ("trained-standin", "standin")
