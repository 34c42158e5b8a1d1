"""Architecture presets of the seed families, at true size (``full``) and for fast tests (``tiny``)."""

from __future__ import annotations

from dataclasses import dataclass

from kolite_export.standins.vocab import KLUE_VOCAB, KOELECTRA_VOCAB, VocabSpec

__all__ = ["SIZES", "ArchPreset", "preset_for"]

SIZES = ("tiny", "full")


@dataclass(frozen=True)
class ArchPreset:
    vocab: VocabSpec
    embedding_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int


_PRESETS: dict[tuple[str, str], ArchPreset] = {
    # monologg/koelectra-small-v3-discriminator
    ("koelectra-small", "full"): ArchPreset(KOELECTRA_VOCAB, 128, 256, 12, 4, 1024, 512, 2),
    ("koelectra-small", "tiny"): ArchPreset(KOELECTRA_VOCAB, 32, 64, 2, 2, 128, 512, 2),
    # monologg/koelectra-base-v3-discriminator
    ("koelectra-base", "full"): ArchPreset(KOELECTRA_VOCAB, 768, 768, 12, 12, 3072, 512, 2),
    ("koelectra-base", "tiny"): ArchPreset(KOELECTRA_VOCAB, 64, 64, 2, 2, 128, 512, 2),
    # jhgan/ko-sroberta-multitask (klue/roberta-base): positions start after the pad id, hence 514.
    ("klue-roberta", "full"): ArchPreset(KLUE_VOCAB, 768, 768, 12, 12, 3072, 514, 1),
    ("klue-roberta", "tiny"): ArchPreset(KLUE_VOCAB, 64, 64, 2, 2, 128, 514, 1),
}


def preset_for(family: str, size: str) -> ArchPreset:
    try:
        return _PRESETS[(family, size)]
    except KeyError:
        raise ValueError(f"no preset for family {family!r} size {size!r} (sizes: {', '.join(SIZES)})") from None
