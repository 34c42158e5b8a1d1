"""Unicode normalisation: NFD and NFC forms of a text get the same answers, and offsets still index the string the
user sent (issue 11: decomposed Hangul from macOS, clipboards and scraped corpora)."""

from __future__ import annotations

import random
import unicodedata

import kolite
import numpy as np
import pytest
from kolite.normalization import normalize

REVIEWS = ["영화 정말 재미있었다", "별로예요. 시간 아깝다", "배우들 연기가 최고였고 음악도 좋았다", "", "ㅋㅋ 👍"]
NER_TEXT = "홍길동은 2024년 3월 서울에서 삼성전자를 다녔다"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_normalized_text_is_nfc_and_maps_every_character_back():
    rng = random.Random(0)
    # Hangul syllables and conjoining jamo, Latin with combining marks, a Malayalam vowel sign that composes
    # backwards, a Tibetan vowel that decomposes into non-starters, emoji: whatever order they come in.
    alphabet = [chr(c) for c in (*range(0x1100, 0x1113), *range(0x1161, 0x1176), *range(0x11A8, 0x11C3))]
    alphabet += [chr(c) for c in (*range(0xAC00, 0xAC20), *range(0x300, 0x316))]
    alphabet += ["a", "e", " ", "\u0d46", "\u0d3e", "\u0f73", "\u0f71", "\u0f72", "\U0001f642", "\u200b"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        result = normalize(text)
        assert result.text == unicodedata.normalize("NFC", text)
        for i, char in enumerate(result.text):
            start, end = result.to_original(i, i + 1)
            assert 0 <= start < end <= len(text)
            assert char in unicodedata.normalize("NFC", text[start:end])


def test_already_normalized_text_maps_to_itself():
    result = normalize("이미 NFC 문장")
    assert result.starts is None and result.to_original(3, 6) == (3, 6)
    assert normalize(nfd("한국어"), "none").text == nfd("한국어")


def test_nfd_and_nfc_texts_classify_identically(tiny_artifact):
    with kolite.load(tiny_artifact("000"), variant="fp32") as model:
        composed = model.logits(REVIEWS)
        decomposed = model.logits([nfd(t) for t in REVIEWS])
        mixed = model.logits([t[: len(t) // 2] + nfd(t[len(t) // 2 :]) for t in REVIEWS])
        assert composed.tobytes() == decomposed.tobytes() == mixed.tobytes()
        assert model.classify(nfd(REVIEWS[0]), top_k=None) == model.classify(REVIEWS[0], top_k=None)
    # Turned off, decomposed Hangul reaches the tokenizer as jamo: other tokens, other logits.
    with kolite.load(tiny_artifact("000"), variant="fp32", normalization="none") as raw:
        assert raw.encoder.encode([nfd(REVIEWS[0])]).sequences != raw.encoder.encode([REVIEWS[0]]).sequences


@pytest.mark.parametrize("aggregation", ["none", "simple", "first"])
def test_entities_of_decomposed_text_slice_the_original(tiny_artifact, aggregation):
    texts = [NER_TEXT, nfd(NER_TEXT), NER_TEXT[:6] + nfd(NER_TEXT[6:]) + " e\u0301 🙂 ᄒ"]
    with kolite.load(tiny_artifact("004"), variant="fp32") as model:
        # ignore no label: every token becomes (part of) an entity, so the test does not depend on the weights
        composed, decomposed, mixed = model.tag(texts, aggregation=aggregation, ignore_labels=(), stride=4)
    for original, entities in zip(texts, (composed, decomposed, mixed), strict=True):
        assert entities, "the tiny tagger labels every token"
        for entity in entities:
            assert entity.text == original[entity.start : entity.end]
    # Same labels and scores; the NFD offsets cover the jamo of the same characters.
    assert [(e.label, e.score) for e in decomposed] == [(e.label, e.score) for e in composed]
    for c, d in zip(composed, decomposed, strict=True):
        assert unicodedata.normalize("NFC", d.text) == c.text


def test_manifest_records_normalization_and_load_can_override(tiny_artifact):
    with kolite.load(tiny_artifact("000"), variant="fp32") as model:
        assert model.manifest.normalization == "NFC" and model.encoder.normalization == "NFC"
    with pytest.raises(kolite.UnknownVariantError, match="normalization"):
        kolite.load(tiny_artifact("000"), normalization="NFKD")


def test_windows_of_decomposed_long_text_keep_offsets(tiny_artifact):
    long_text = " ".join([NER_TEXT] * 30)
    with kolite.load(tiny_artifact("004"), variant="fp32") as model:
        composed = model.tag(long_text, aggregation="simple", ignore_labels=())
        decomposed = model.tag(nfd(long_text), aggregation="simple", ignore_labels=())
    assert [(e.label, e.score) for e in composed] == [(e.label, e.score) for e in decomposed]
    assert all(e.text == nfd(long_text)[e.start : e.end] for e in decomposed)
    assert np.isclose(sum(e.score for e in composed), sum(e.score for e in decomposed))
