"""What a benchmark run measures: the seed models it knows, and the settings of one run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CONTENDERS",
    "REPO_ROOT",
    "SEEDS",
    "BenchConfig",
    "SeedModel",
    "shared_dir",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SeedModel:
    """A seed model the benchmark knows: where the original lives and which data measure it."""

    seed_id: str
    hub_id: str | None
    task: str  # "text-classification" | "token-classification"
    dataset: str  # "nsmc" | "klue-ner" | "kote"
    artifact_name: str
    # Folder under $KOLITE_SHARED/standins holding a TRAINED stand-in, if one exists.
    trained_standin: str | None = None
    # Layout the original ships in: "hf" (transformers save_pretrained) or "sroberta" (best.pt + tokenizer/).
    layout: str = "hf"

    @property
    def labelled(self) -> bool:
        return self.dataset in ("nsmc", "klue-ner")


SEEDS: dict[str, SeedModel] = {
    s.seed_id: s
    for s in (
        SeedModel("000", "daekeun-ml/koelectra-small-v3-nsmc", "text-classification", "nsmc",
                  "000-koelectra-small-v3-nsmc", trained_standin="koelectra-small-v3-nsmc"),
        SeedModel("001", "cringepnh/koelectra-korean-sentiment", "text-classification", "nsmc",
                  "001-koelectra-korean-sentiment"),
        SeedModel("002", "Jinuuuu/KoELECTRA_fine_tunning_emotion", "text-classification", "kote",
                  "002-koelectra-emotion"),
        SeedModel("003", None, "text-classification", "kote", "003-ko-sroberta-sentence-type", layout="sroberta"),
        SeedModel("004", "Leo97/KoELECTRA-small-v3-modu-ner", "token-classification", "klue-ner",
                  "004-koelectra-small-v3-modu-ner", trained_standin="koelectra-small-v3-modu-ner"),
    )
}

# Every contender the harness knows, in the order they run (cheap ones first so a long run yields early numbers).
CONTENDERS = (
    "kolite-int8",
    "kolite-int8-static",
    "kolite-fp32-opt",
    "kolite-fp32",
    "kolite-fp16",
    "optimum-int8",
    "pipeline",
    "torch-longest",
    "torch",
)
# The seed-card recipe (padding="max_length", max_length=128): the "original" every agreement is measured against.
REFERENCE = "torch"
FALLBACK_REFERENCE = "torch-longest"


def shared_dir() -> Path:
    """The read-only data folder beside the checkout (``KOLITE_SHARED`` overrides)."""
    return Path(os.environ.get("KOLITE_SHARED", REPO_ROOT.parent / "shared"))


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
    warmup: int = 10
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
