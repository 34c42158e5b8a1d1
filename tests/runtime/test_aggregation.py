"""kolite.aggregation against transformers' TokenClassificationPipeline methods on the same random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from kolite.aggregation import (
    AGGREGATIONS,
    LabelScheme,
    PreToken,
    RawEntity,
    aggregate,
    bio_spans,
    check_aggregation,
    gather_pre_tokens,
    merge_overlapping,
    subword_flags,
    token_entities,
    word_entities,
)
from kolite.classification import softmax
from kolite.errors import InvalidInputError
from kolite.tokenization import TextEncoder

SENTENCES = ["홍길동은 서울에 산다", "삼성전자는 2024년에 ABC회사를 인수했다 😀", "   ", "a"]


@pytest.fixture(scope="module")
def ner_pipeline(standin_dir):
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    folder = standin_dir("004")
    module = AutoModelForTokenClassification.from_pretrained(folder).eval()
    return pipeline("token-classification", model=module, tokenizer=AutoTokenizer.from_pretrained(folder))


def random_pre_tokens(rng: np.random.Generator, count: int, num_labels: int) -> list[PreToken]:
    tokens, position = [], 0
    for index in range(count):
        width = int(rng.integers(1, 4))
        scores = softmax(rng.normal(size=num_labels).astype(np.float32) * 3)
        tokens.append(PreToken(scores, position, position + width, index + 1, bool(index and rng.random() < 0.4)))
        position += width + int(rng.integers(0, 2))
    return tokens


def as_pipeline_dicts(tokens: list[PreToken]) -> list[dict]:
    return [
        {
            "word": "x" * (t.end - t.start),
            "scores": t.scores,
            "start": t.start,
            "end": t.end,
            "index": t.index,
            "is_subword": t.is_subword,
        }
        for t in tokens
    ]


@pytest.mark.torch
@pytest.mark.parametrize("strategy", AGGREGATIONS)
def test_aggregate_equals_pipeline_on_random_scores(strategy, ner_pipeline):
    from transformers.pipelines.token_classification import AggregationStrategy

    labels = [ner_pipeline.model.config.id2label[i] for i in range(ner_pipeline.model.config.num_labels)]
    rng = np.random.default_rng(0)
    for _ in range(50):
        tokens = random_pre_tokens(rng, int(rng.integers(1, 25)), len(labels))
        expected = ner_pipeline.aggregate(as_pipeline_dicts(tokens), AggregationStrategy(strategy))
        got = aggregate(tokens, strategy, labels)
        key = "entity" if strategy == "none" else "entity_group"
        assert [(e[key], e["start"], e["end"]) for e in expected] == [(e.label, e.start, e.end) for e in got]
        assert [float(e["score"]) for e in expected] == pytest.approx([float(e.score) for e in got], rel=1e-6)


@pytest.mark.torch
def test_gather_pre_tokens_equals_pipeline_subword_rule(ner_pipeline, tiny_artifact):
    from transformers.pipelines.token_classification import AggregationStrategy

    artifact = tiny_artifact("004")
    encoder = TextEncoder((artifact / "tokenizer.json").read_text(encoding="utf-8"), 64)
    rng = np.random.default_rng(1)
    for sentence in SENTENCES:
        ((encoding,),) = encoder.encode([sentence]).windows
        scores = softmax(rng.normal(size=(len(encoding.ids), 5)).astype(np.float32))
        expected = ner_pipeline.gather_pre_entities(
            sentence,
            np.array(encoding.ids),
            scores,
            encoding.offsets,
            np.array(encoding.special_tokens_mask),
            AggregationStrategy.FIRST,
        )
        got = gather_pre_tokens(
            sentence,
            encoding.tokens,
            encoding.ids,
            encoding.offsets,
            encoding.special_tokens_mask,
            scores,
            encoder.subword_prefix,
            encoder.unk_token_id,
        )
        assert [(e["start"], e["end"], e["index"], e["is_subword"]) for e in expected] == [
            (t.start, t.end, t.index, t.is_subword) for t in got
        ]


@pytest.mark.torch
def test_merge_overlapping_equals_pipeline(ner_pipeline):
    rng = np.random.default_rng(2)
    for _ in range(50):
        entities = []
        for _ in range(int(rng.integers(0, 12))):
            start = int(rng.integers(0, 40))
            entities.append(RawEntity("PS", float(rng.random()), start, start + int(rng.integers(1, 6))))
        as_dicts = [{"entity_group": e.label, "score": e.score, "start": e.start, "end": e.end} for e in entities]
        expected = ner_pipeline.aggregate_overlapping_entities(as_dicts)
        got = merge_overlapping(entities)
        assert [(e["start"], e["end"], e["score"]) for e in expected] == [(e.start, e.end, e.score) for e in got]


def test_unknown_aggregation_is_refused():
    assert check_aggregation("MAX") == "max"
    with pytest.raises(InvalidInputError, match="valid: none, simple, first, average, max"):
        check_aggregation("mean")


def test_bio_spans_groups_like_the_runtime():
    tags = ["O", "B-PS", "I-PS", "O", "I-LC", "B-LC", "B-LC", "I-PS"]
    assert bio_spans(tags) == [(1, 3, "PS"), (4, 5, "LC"), (5, 6, "LC"), (6, 7, "LC"), (7, 8, "PS")]
    assert bio_spans(["O", "O"]) == [] and bio_spans([]) == []


def test_bio_spans_are_the_spans_simple_aggregation_returns():
    """The one BIO grouping: export's entity agreement and the bench's spans use bio_spans, the runtime aggregate."""
    labels = ("O", "B-PS", "I-PS", "B-LC", "I-LC")
    rng = np.random.default_rng(7)
    for _ in range(50):
        tokens = random_pre_tokens(rng, int(rng.integers(1, 12)), len(labels))
        tags = [labels[int(token.scores.argmax())] for token in tokens]
        entities = [e for e in aggregate(tokens, "simple", labels) if e.label != "O"]
        expected = [(e.start, e.end, e.label) for e in entities]
        spans = [(tokens[start].start, tokens[end - 1].end, kind) for start, end, kind in bio_spans(tags)]
        assert spans == expected


def _as_bits(entities: list[RawEntity]) -> list[tuple]:
    return [(e.label, np.float32(e.score).view(np.uint32).item(), e.start, e.end, e.index) for e in entities]


@pytest.mark.parametrize("strategy", ["none", "simple"])
def test_token_entities_equal_aggregate_bit_for_bit(strategy):
    """The array path the tagger runs for none/simple gives aggregate's entities and scores to the last bit: runs of
    1 to 300 tokens (numpy's pairwise float32 sum changes shape at 8 and 128), odd label names, ignored labels."""
    labels = ("O", "B-PS", "I-PS", "B-LC", "I-LC", "QT", "x-y")
    scheme = LabelScheme.of(labels)
    rng = np.random.default_rng(11)
    for trial in range(120):
        count = int(rng.integers(1, 300))
        tokens = random_pre_tokens(rng, count, len(labels))
        if trial % 3 == 0:  # long runs of one label: every token's best label is I-PS
            for token in tokens:
                token.scores[2] = 2.0
        probabilities = np.stack([token.scores for token in tokens])
        offsets = np.array([(token.start, token.end) for token in tokens], dtype=np.int64)
        positions = np.array([token.index for token in tokens], dtype=np.int64)
        for ignore in (set(), {"O"}, {"O", "PS", "y"}):
            expected = [e for e in aggregate(tokens, strategy, labels) if e.label not in ignore]
            got = token_entities(probabilities, offsets, positions, strategy, labels, scheme, ignore)
            assert _as_bits(got) == _as_bits(expected)


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # the pipeline's nanmean warns the same way
def test_token_entities_score_a_nan_like_the_pipeline():
    labels = ("O", "B-PS", "I-PS")
    probabilities = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [np.nan, 0.1, 0.9]], dtype=np.float32)
    tokens = [PreToken(row, i, i + 1, i + 1, False) for i, row in enumerate(probabilities)]
    offsets, positions = np.array([(i, i + 1) for i in range(3)]), np.arange(1, 4)
    expected = aggregate(tokens, "simple", labels)
    got = token_entities(probabilities, offsets, positions, "simple", labels, LabelScheme.of(labels))
    assert _as_bits(got) == _as_bits(expected)


@pytest.mark.parametrize("strategy", ["first", "average", "max"])
def test_word_entities_equal_aggregate_bit_for_bit(strategy):
    """The array path for the word strategies: words of 1 to 12 tokens, long runs of one label, ties in ``max``."""
    labels = ("O", "B-PS", "I-PS", "B-LC", "I-LC", "QT", "x-y")
    scheme = LabelScheme.of(labels)
    rng = np.random.default_rng(12)
    for trial in range(120):
        tokens = random_pre_tokens(rng, int(rng.integers(1, 200)), len(labels))
        if trial % 3 == 0:
            for token in tokens:
                token.scores[2] = 2.0  # one label everywhere, and every token of a word ties on its best score
        if trial % 4 == 1:  # long words: most tokens continue the one before
            tokens = [PreToken(t.scores, t.start, t.end, t.index, bool(i and rng.random() < 0.85))
                      for i, t in enumerate(tokens)]
        probabilities = np.stack([token.scores for token in tokens])
        offsets = np.array([(token.start, token.end) for token in tokens], dtype=np.int64)
        is_subword = np.array([token.is_subword for token in tokens])
        for ignore in (set(), {"O"}, {"O", "PS", "y"}):
            expected = [e for e in aggregate(tokens, strategy, labels) if e.label not in ignore]
            got = word_entities(probabilities, offsets, is_subword, strategy, labels, scheme, ignore)
            assert _as_bits(got) == _as_bits(expected)


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
def test_word_entities_take_the_reference_path_for_a_nan():
    labels = ("O", "B-PS", "I-PS")
    probabilities = np.array([[0.1, 0.8, 0.1], [np.nan, 0.1, 0.8], [0.2, 0.1, 0.7]], dtype=np.float32)
    tokens = [PreToken(row, i, i + 1, 0, i == 1) for i, row in enumerate(probabilities)]
    offsets, is_subword = np.array([(i, i + 1) for i in range(3)]), np.array([False, True, False])
    for strategy in ("first", "average", "max"):
        got = word_entities(probabilities, offsets, is_subword, strategy, labels, LabelScheme.of(labels))
        assert _as_bits(got) == _as_bits(aggregate(tokens, strategy, labels))


def test_subword_flags_follow_both_of_the_pipelines_rules():
    # WordPiece: "##" tokens are longer than their surface; an unknown token always opens a word.
    text = "홍길동은 서울"
    tokens, offsets = ["홍길동", "##은", "[UNK]", "서울"], [(0, 3), (3, 4), (3, 4), (5, 7)]
    assert subword_flags(text, tokens, [5, 6, 1, 7], offsets, "##", None).tolist() == [False, True, True, False]
    assert subword_flags(text, tokens, [5, 6, 1, 7], offsets, "##", 1).tolist() == [False, True, False, False]
    # No prefix (SentencePiece/BPE): a token continues a word when no space touches its start.
    pieces, piece_offsets = ["▁홍길동", "은", "▁서울"], [(0, 3), (3, 4), (5, 7)]
    assert subword_flags(text, pieces, [1, 2, 3], piece_offsets, None, None).tolist() == [False, True, False]


def test_token_entities_refuses_word_strategies():
    with pytest.raises(InvalidInputError, match="needs words"):
        scheme = LabelScheme.of(["O"])
        token_entities(np.ones((1, 1), np.float32), np.zeros((1, 2)), np.zeros(1), "first", ("O",), scheme)
