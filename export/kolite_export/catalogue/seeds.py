"""The five seed checkpoints kolite is built, tested and benchmarked against.

Each entry is a frozen dataclass naming the hub id, the task, the labels in id order, the checkpoint layout, the
data set that validates and benchmarks it, and where an offline stand-in lives (a trained one under
``$KOLITE_SHARED/standins`` or one this project builds).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NER_LABELS", "SEEDS", "SENTENCE_TYPE_LABELS", "SeedModel", "get_seed"]

# Seed 004's 31 BIO labels over the 15 TTA tags, in the seed's id order.
_TTA_TAGS = ("PS", "FD", "TR", "AF", "OG", "LC", "CV", "DT", "TI", "QT", "EV", "AM", "PT", "MT", "TM")
NER_LABELS: tuple[str, ...] = ("O", *(f"{prefix}-{tag}" for tag in _TTA_TAGS for prefix in ("B", "I")))
SENTENCE_TYPE_LABELS: tuple[str, ...] = ("사실형", "추론형", "예측형", "대화형")


@dataclass(frozen=True)
class SeedModel:
    """One seed checkpoint: what it is and where its offline stand-in comes from."""

    seed_id: str
    name: str
    hub_id: str | None
    task: str
    labels: tuple[str, ...]
    layout: str
    family: str  # architecture preset used by the stand-in builder (koelectra-small, koelectra-base, klue-roberta)
    # Folder name under $KOLITE_SHARED/standins holding a *trained* stand-in, or None (project-built stand-in).
    trained_standin: str | None = None
    # The data set (kolite_export.catalogue.datasets) the export gate validates on and the benchmark measures.
    dataset: str = "nsmc"

    @property
    def artifact_name(self) -> str:
        return f"{self.seed_id}-{self.name}"

    @property
    def checkpoint_format(self) -> str:
        """How the original loads in PyTorch: "hf" (transformers) or "sroberta" (best.pt + tokenizer/)."""
        return "sroberta" if self.layout == "sroberta-mean-pooling" else "hf"


SEEDS: dict[str, SeedModel] = {
    seed.seed_id: seed
    for seed in (
        SeedModel(
            "000",
            "koelectra-small-v3-nsmc",
            "daekeun-ml/koelectra-small-v3-nsmc",
            "text-classification",
            ("negative", "positive"),
            "electra-sequence-classification",
            "koelectra-small",
            trained_standin="koelectra-small-v3-nsmc",
            dataset="nsmc",
        ),
        SeedModel(
            "001",
            "koelectra-korean-sentiment",
            "cringepnh/koelectra-korean-sentiment",
            "text-classification",
            ("negative", "positive"),
            "electra-sequence-classification",
            "koelectra-base",
            dataset="nsmc",
        ),
        SeedModel(
            "002",
            "koelectra-emotion",
            "Jinuuuu/KoELECTRA_fine_tunning_emotion",
            "text-classification",
            ("angry", "anxious", "embarrassed", "happy", "heartache", "sad"),
            "electra-sequence-classification",
            "koelectra-base",
            dataset="kote",
        ),
        SeedModel(
            "003",
            "ko-sroberta-sentence-type",
            None,
            "text-classification",
            SENTENCE_TYPE_LABELS,
            "sroberta-mean-pooling",
            "klue-roberta",
            dataset="kote",
        ),
        SeedModel(
            "004",
            "koelectra-small-v3-modu-ner",
            "Leo97/KoELECTRA-small-v3-modu-ner",
            "token-classification",
            NER_LABELS,
            "electra-token-classification",
            "koelectra-small",
            trained_standin="koelectra-small-v3-modu-ner",
            dataset="klue-ner",
        ),
    )
}


def get_seed(seed_id: str) -> SeedModel:
    """Return the seed with id ``seed_id`` ("000".."004"); a KeyError names the known ids."""
    try:
        return SEEDS[seed_id]
    except KeyError:
        raise KeyError(f"unknown seed {seed_id!r}; known: {', '.join(SEEDS)}") from None
