"""Stand-ins: each seed's exact layout, special-token ids, labels, a real Korean WordPiece, deterministic weights."""

from __future__ import annotations

import json
import os

import pytest
from kolite_export.catalogue import SEEDS

SEED_IDS = tuple(SEEDS)
KOELECTRA_SPECIALS = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
KLUE_SPECIALS = {"[CLS]": 0, "[PAD]": 1, "[SEP]": 2, "[UNK]": 3}

pytestmark = pytest.mark.torch


@pytest.mark.parametrize("seed", SEED_IDS)
def test_standin_is_recognised_as_its_seed_layout(standin_dir, seed):
    from kolite_export.catalogue import get_seed
    from kolite_export.layouts import detect_layout, load_checkpoint

    path = standin_dir(seed)
    zoo = get_seed(seed)
    assert detect_layout(path).name == zoo.layout
    checkpoint = load_checkpoint(path)
    assert checkpoint.labels == zoo.labels
    assert checkpoint.task == zoo.task


@pytest.mark.parametrize("seed", ("000", "001", "002", "004"))
def test_koelectra_standins_have_hf_layout_and_special_ids(standin_dir, seed):
    from transformers import AutoTokenizer

    path = standin_dir(seed)
    for name in ("config.json", "pytorch_model.bin", "tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        assert (path / name).is_file(), name
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "electra" and config["vocab_size"] == 35000
    assert config["pad_token_id"] == 0
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    assert {t: tokenizer.convert_tokens_to_ids(t) for t in KOELECTRA_SPECIALS} == KOELECTRA_SPECIALS


def test_sroberta_standin_has_the_custom_layout(standin_dir):
    import torch
    from transformers import AutoTokenizer

    path = standin_dir("003")
    for name in ("best.pt", "label_mapping.json", "model_config.json", "inference_config.json"):
        assert (path / name).is_file(), name
    assert (path / "tokenizer" / "tokenizer.json").is_file()
    mapping = json.loads((path / "label_mapping.json").read_text(encoding="utf-8"))
    assert list(mapping["label2id"]) == ["사실형", "추론형", "예측형", "대화형"]
    state = torch.load(path / "best.pt", map_location="cpu", weights_only=True)
    assert any(k.startswith("encoder.") for k in state) and "classifier.weight" in state
    model_config = json.loads((path / "model_config.json").read_text(encoding="utf-8"))
    assert model_config["encoder_config"]["pad_token_id"] == 1
    assert model_config["encoder_config"]["vocab_size"] == 32000
    tokenizer = AutoTokenizer.from_pretrained(str(path / "tokenizer"))
    assert {t: tokenizer.convert_tokens_to_ids(t) for t in KLUE_SPECIALS} == KLUE_SPECIALS


@pytest.mark.parametrize("seed", ("000", "003"))
def test_standin_tokenizer_is_a_real_korean_wordpiece(standin_dir, seed):
    from kolite_export.layouts import load_checkpoint

    tokenizer = load_checkpoint(standin_dir(seed)).tokenizer
    tokens = tokenizer.tokenize("이 영화는 배우들의 연기가 정말 훌륭했습니다")
    assert "[UNK]" not in tokens
    assert any(t.startswith("##") for t in tokens)  # subword pieces, not a character or word list
    assert "".join(t.removeprefix("##") for t in tokens) == "이영화는배우들의연기가정말훌륭했습니다"


def test_standin_rebuilt_from_scratch_is_byte_identical(standin_dir, tmp_path, shared_data):
    import torch
    from kolite_export.standins import build_standin

    cached = standin_dir("000")
    # A fresh vocabulary cache: the rebuild learns its vocabulary again instead of reading the one the first used.
    rebuilt = build_standin("000", "tiny", tmp_path / "000", shared=shared_data, vocab_cache=tmp_path / "vocab")
    first = torch.load(cached / "pytorch_model.bin", map_location="cpu", weights_only=True)
    second = torch.load(rebuilt / "pytorch_model.bin", map_location="cpu", weights_only=True)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    for name in ("tokenizer.json", "vocab.txt"):
        assert (cached / name).read_bytes() == (rebuilt / name).read_bytes(), name


_LEARN_IN_A_NEW_PROCESS = """
import sys
from pathlib import Path
from kolite_export.standins.vocab import VocabSpec, learn_wordpiece
spec = VocabSpec("probe", 3000, ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"))
tok = learn_wordpiece(spec, Path(sys.argv[1]), Path(sys.argv[2]), limit=5000)
sys.stdout.write(tok.to_str())
"""


def test_vocabulary_is_the_same_in_every_process(tmp_path, shared_data):
    # The tie-breaking that made stand-ins differ came from per-process hash seeds: learn in two processes with
    # different seeds and compare.
    import subprocess
    import sys

    from kolite_export.standins import standin_corpus

    corpus = standin_corpus(shared_data)
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        cache = tmp_path / f"cache-{hash_seed}"
        run = subprocess.run(
            [sys.executable, "-c", _LEARN_IN_A_NEW_PROCESS, str(corpus), str(cache)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    vocab = json.loads(outputs[0])["model"]["vocab"]
    assert len(vocab) == 3000 and vocab["[PAD]"] == 0 and vocab["[MASK]"] == 4


def test_standins_cli_writes_the_requested_seeds(tmp_path, shared_data, monkeypatch, standin_dir):
    from kolite.cli import main

    monkeypatch.setenv("KOLITE_SHARED", str(shared_data))
    monkeypatch.setenv("KOLITE_CACHE", str(standin_dir("004").parents[3]))  # reuse the learnt vocabulary
    assert main(["standins", "--size", "tiny", "--out", str(tmp_path), "--seeds", "004"]) == 0
    assert (tmp_path / "004" / "config.json").is_file()
    assert not (tmp_path / "000").exists()


def test_full_size_head_is_a_nearest_centroid_classifier_with_a_trained_spread(shared_data):
    # Exercised here on a tiny encoder (the full-size build uses the same function, on 512 texts).
    import torch
    from kolite_export.catalogue import get_seed
    from kolite_export.paths import cache_dir
    from kolite_export.standins import build as standin_build
    from kolite_export.standins import standin_corpus
    from kolite_export.standins.presets import preset_for
    from kolite_export.standins.vocab import learn_wordpiece, read_nsmc_texts
    from transformers import ElectraForSequenceClassification

    seed = get_seed("002")  # six labels
    preset = preset_for(seed.family, "tiny")
    tok = learn_wordpiece(preset.vocab, standin_corpus(shared_data), cache_dir() / "standin-vocab")
    torch.manual_seed(2)
    model = ElectraForSequenceClassification(standin_build._electra_config(seed, preset, tok))
    texts = read_nsmc_texts(standin_corpus(shared_data), 128)
    standin_build._aim_head_at_feature_clusters(model, tok, texts)

    features = standin_build._classifier_features(model, tok, texts).double()
    centroids = standin_build._kmeans(features, len(seed.labels))
    head = model.classifier.out_proj
    logits = features @ head.weight.double().T + head.bias.double()
    assert torch.equal(logits.argmax(1), torch.cdist(features, centroids).argmin(1))
    assert abs(logits.std().item() - standin_build.HEAD_LOGIT_STD) < 1e-3
