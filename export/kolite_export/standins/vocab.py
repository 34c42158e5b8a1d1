"""Real WordPiece vocabularies for the stand-ins, learnt from Korean text and cached.

KoELECTRA and the KLUE vocabulary behind ko-sroberta are both BERT-style WordPiece without lower-casing; they
differ in size and in the order of their special tokens, which the seeds' configs depend on.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

__all__ = [
    "KLUE_VOCAB",
    "KOELECTRA_VOCAB",
    "VocabSpec",
    "choose_pieces",
    "count_words",
    "learn_wordpiece",
    "read_nsmc_texts",
    "wordpiece_tokenizer",
]


@dataclass(frozen=True)
class VocabSpec:
    name: str
    vocab_size: int
    special_tokens: tuple[str, ...]  # in id order: special_tokens[i] gets id i


KOELECTRA_VOCAB = VocabSpec("koelectra", 35000, ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"))
KLUE_VOCAB = VocabSpec("klue", 32000, ("[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"))


def read_nsmc_texts(path: Path, limit: int | None = None) -> list[str]:
    """The non-empty ``document`` column of an NSMC file, in file order (the catalogue's NSMC reader)."""
    from kolite_export.catalogue import read_nsmc

    texts = [text for text in read_nsmc(path).texts if text]
    return texts if limit is None else texts[:limit]


# Bump when the vocabulary algorithm changes: it is part of the cache key, so old cached vocabularies are not reused.
VOCAB_ALGORITHM = "substring-frequency-v1"
MAX_PIECE_CHARS = 8
MIN_FREQUENCY = 2


def _cache_key(spec: VocabSpec, corpus: Path, limit: int | None) -> str:
    stat = corpus.stat()
    raw = f"{VOCAB_ALGORITHM}|{spec}|{corpus.name}|{stat.st_size}|{limit}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _normalizer() -> normalizers.Normalizer:
    return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)


def count_words(texts: list[str]) -> Counter[str]:
    """How often each BERT pre-tokenized word (punctuation split off, no lower-casing) occurs in ``texts``."""
    normalizer, pre_tokenizer = _normalizer(), pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    return words


def choose_pieces(words: Counter[str], spec: VocabSpec) -> list[str]:
    """A WordPiece vocabulary in id order: special tokens, every character (word-initial and ``##``), then the
    most frequent word-initial and ``##`` continuation substrings.

    tokenizers' WordPieceTrainer breaks frequency ties in hash-map order, which changes from process to process,
    so two builds of one stand-in got different vocabularies. Here every choice is a sort on (-count, piece): the
    same corpus always gives the same vocabulary, byte for byte.
    """
    chars: Counter[str] = Counter()
    substrings: Counter[str] = Counter()
    for word, count in words.items():
        for i, char in enumerate(word):
            chars[char if i == 0 else "##" + char] += count
        for end in range(2, min(len(word), MAX_PIECE_CHARS) + 1):
            substrings[word[:end]] += count
        for start in range(1, len(word) - 1):
            for end in range(start + 2, min(len(word), start + MAX_PIECE_CHARS) + 1):
                substrings["##" + word[start:end]] += count

    def by_frequency(counts: Counter[str]) -> list[str]:
        kept = (piece for piece, count in counts.items() if count >= MIN_FREQUENCY)
        return sorted(kept, key=lambda piece: (-counts[piece], piece))

    vocab = [*spec.special_tokens, *by_frequency(chars)]
    if len(vocab) > spec.vocab_size:
        raise ValueError(f"{spec.name}: {len(vocab)} characters do not fit a {spec.vocab_size}-piece vocabulary")
    vocab += by_frequency(substrings)[: spec.vocab_size - len(vocab)]
    if len(vocab) < spec.vocab_size:
        raise ValueError(f"{spec.name}: the corpus yields only {len(vocab)} pieces, {spec.vocab_size} needed")
    return vocab


def wordpiece_tokenizer(vocab: list[str]) -> Tokenizer:
    """A BERT-style WordPiece tokenizer (no lower-casing, ``[CLS] A [SEP]`` template) over ``vocab``."""
    tok = Tokenizer(models.WordPiece({piece: i for i, piece in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = _normalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    tok.decoder = decoders.WordPiece()
    return tok


def learn_wordpiece(spec: VocabSpec, corpus: Path, cache: Path, limit: int | None = None) -> Tokenizer:
    """Learn (or load from ``cache``) a WordPiece tokenizer with ``spec``'s size and special-token ids."""
    cached = cache / f"{spec.name}-{_cache_key(spec, corpus, limit)}.json"
    if cached.is_file():
        return Tokenizer.from_file(str(cached))
    tok = wordpiece_tokenizer(choose_pieces(count_words(read_nsmc_texts(corpus, limit)), spec))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tok.save(str(tmp))
    tmp.replace(cached)
    return tok
