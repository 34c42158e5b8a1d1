"""Real WordPiece vocabularies for the stand-ins, learnt from Korean text and cached.

KoELECTRA and the KLUE vocabulary behind ko-sroberta are both BERT-style WordPiece without lower-casing; they
differ in size and in the order of their special tokens, which the seeds' configs depend on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

__all__ = ["KLUE_VOCAB", "KOELECTRA_VOCAB", "VocabSpec", "learn_wordpiece", "read_nsmc_texts"]


@dataclass(frozen=True)
class VocabSpec:
    name: str
    vocab_size: int
    special_tokens: tuple[str, ...]  # in id order: special_tokens[i] gets id i


KOELECTRA_VOCAB = VocabSpec("koelectra", 35000, ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"))
KLUE_VOCAB = VocabSpec("klue", 32000, ("[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"))


def read_nsmc_texts(path: Path, limit: int | None = None) -> list[str]:
    """The ``document`` column of an NSMC ``id<TAB>document<TAB>label`` file (header skipped)."""
    texts = []
    with path.open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[1]:
                texts.append(parts[1])
            if limit is not None and len(texts) >= limit:
                break
    return texts


def _cache_key(spec: VocabSpec, corpus: Path, limit: int | None) -> str:
    stat = corpus.stat()
    raw = f"{spec}|{corpus.name}|{stat.st_size}|{limit}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def learn_wordpiece(spec: VocabSpec, corpus: Path, cache: Path, limit: int | None = None) -> Tokenizer:
    """Learn (or load from ``cache``) a WordPiece tokenizer with ``spec``'s size and special-token ids."""
    cached = cache / f"{spec.name}-{_cache_key(spec, corpus, limit)}.json"
    if cached.is_file():
        return Tokenizer.from_file(str(cached))
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=spec.vocab_size, min_frequency=2, special_tokens=list(spec.special_tokens), show_progress=False
    )
    tok.train_from_iterator(read_nsmc_texts(corpus, limit), trainer)
    for expected_id, token in enumerate(spec.special_tokens):
        if tok.token_to_id(token) != expected_id:
            raise RuntimeError(f"{token} got id {tok.token_to_id(token)}, expected {expected_id}")
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tok.save(str(tmp))
    tmp.replace(cached)
    return tok
