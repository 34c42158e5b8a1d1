"""Long texts cost work linear in their length, and the Python API caps the texts that are never cut (issue 21,
item 6). Work is counted (characters per tokenizer call, windows, decode calls), never timed."""

from __future__ import annotations

import kolite
import pytest
from kolite import token_classification, tokenization
from kolite.errors import InvalidInputError
from kolite.tokenization import PIECE_CHARS

SENTENCES = [
    "홍길동은 1998년 3월 서울에서 태어났다.",
    "삼성전자(주) 본사는 경기도 수원시에 있다!",
    "이순신 장군은 한산도 대첩에서 크게 이겼다.",
    "KOLITE 팀은 2024-05-01 부산 해운대에서 co-op 행사를 열었다...",
]


def korean_text(chars: int) -> str:
    text, i = "", 0
    while len(text) < chars:
        text += f"{SENTENCES[i % len(SENTENCES)]} {i}번째 문장.  "
        i += 1
    return text[:chars]


@pytest.fixture(scope="module")
def tagger(tiny_artifact):
    with kolite.load(tiny_artifact("004"), max_text_chars=None) as model:
        yield model


def test_windows_from_pieces_equal_the_tokenizers_own_overflow(tagger):
    text = korean_text(30_000)
    encoder = tagger.encoder
    assert encoder._pieces_exact
    for stride in (0, 16, tagger.default_stride()):
        ours = encoder._long_windows(text, stride)
        whole = encoder._window_tokenizer(stride).encode(text)
        theirs = (whole, *whole.overflowing)
        assert len(ours) == len(theirs) > 10
        for a, b in zip(ours, theirs, strict=True):
            assert (a.ids, a.tokens, a.special_tokens_mask) == (b.ids, b.tokens, b.special_tokens_mask)
            assert [tuple(o) for o in a.offsets] == [tuple(o) for o in b.offsets]


def test_entities_equal_the_whole_text_path(tiny_artifact, tagger):
    text = korean_text(12_000)
    with kolite.load(tiny_artifact("004"), max_text_chars=None) as whole:
        whole.encoder.__dict__["_pieces_exact"] = False  # the tokenizer's own windows, on the whole string
        for aggregation in ("simple", "first"):
            assert tagger.tag(text, aggregation=aggregation) == whole.tag(text, aggregation=aggregation)


def test_work_grows_linearly_with_the_text(tagger, monkeypatch):
    pieces: list[int] = []
    decoded: list[int] = []
    split = tokenization.split_pieces

    def counted_split(text: str) -> list[tuple[int, str]]:
        found = split(text)
        pieces.extend(len(piece) for _, piece in found)
        return found

    monkeypatch.setattr(tokenization, "split_pieces", counted_split)
    entities = token_classification.token_entities
    monkeypatch.setattr(token_classification, "token_entities", lambda *a: decoded.append(1) or entities(*a))

    work = {}
    for chars in (20_000, 80_000):
        pieces.clear()
        decoded.clear()
        tagger.encoder.tokenized_chars = 0
        encoded = tagger.encode([korean_text(chars)], tagger.options())
        tagger.decode(tagger.run(encoded), encoded, tagger.options())
        windows = encoded.window_counts[0]
        # Each character is tokenized once (not once per window), in calls of bounded size; each window decoded once.
        assert tagger.encoder.tokenized_chars == chars
        assert max(pieces) <= PIECE_CHARS + 64 and sum(pieces) == chars
        assert len(decoded) == windows
        work[chars] = windows
    assert 4 * work[20_000] - 4 <= work[80_000] <= 4 * work[20_000] + 4


def test_python_api_caps_never_cut_texts(tiny_artifact):
    long = korean_text(100_001)
    with kolite.load(tiny_artifact("004")) as capped:
        assert capped.max_text_chars == 100_000
        with pytest.raises(InvalidInputError, match=r"over max_text_chars=100,000.*max_text_chars=None"):
            capped.tag(long)
        assert isinstance(capped.tag(long[:100_000]), list)
    with kolite.load(tiny_artifact("000")) as classifier:
        assert len(classifier.classify(long * 3)) == 1  # truncated: cut before tokenizing, never refused
        with pytest.raises(InvalidInputError, match="max_text_chars"):
            classifier.classify(long, long_text="windows")
    with kolite.load(tiny_artifact("000"), max_text_chars=200_000) as classifier:
        assert len(classifier.classify(long, long_text="windows")) == 1
    with pytest.raises(InvalidInputError, match="max_text_chars must be a positive int"):
        kolite.load(tiny_artifact("000"), max_text_chars=0)
