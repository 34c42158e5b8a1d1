"""Tiny random transformers checkpoints of the common encoder families, in ``save_pretrained`` layout, with a real
tokenizer learnt from a few hundred NSMC reviews: what a user's fine-tuned checkpoint folder looks like, small.

Each tokenizer is saved in the form the family's hub checkpoints ship it, so the export meets the same files:
WordPiece ``vocab.txt`` + ``tokenizer.json`` (BERT, ELECTRA), byte-level BPE ``vocab.json`` + ``merges.txt`` only
(RoBERTa: the export converts it), SentencePiece ``sentencepiece.bpe.model`` + ``tokenizer.json`` (XLM-R) and
``spm.model`` only (DeBERTa-v2/v3: the export converts it, which needs sentencepiece and protobuf).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS_TEXTS = 600  # NSMC training reviews the tiny vocabularies are learnt from
NER_LABELS = ("O", "B-PS", "I-PS", "B-LC", "I-LC", "B-OG", "I-OG", "B-DT", "I-DT")


@dataclass(frozen=True)
class TinyCase:
    """One tiny checkpoint: family, head and what about it differs from the seeds."""

    name: str
    config_class: str
    model_class: str
    tokenizer: str  # a key of TOKENIZERS
    labels: tuple[str, ...] | None = None  # None: transformers' default LABEL_0.. names
    num_labels: int = 2
    problem_type: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return "token-classification" if self.model_class.endswith("ForTokenClassification") else "text-classification"


CASES = {
    case.name: case
    for case in (
        # LABEL_n names, token_type_ids in the graph, fused attention.
        TinyCase("bert", "BertConfig", "BertForSequenceClassification", "wordpiece", num_labels=3),
        # NER; positions derived from pad id 1, and only 64 of the 66 positions usable.
        TinyCase(
            "roberta",
            "RobertaConfig",
            "RobertaForTokenClassification",
            "byte-bpe",
            labels=NER_LABELS,
            config={"max_position_embeddings": 66, "type_vocab_size": 1},
        ),
        # Multi-label (sigmoid), SentencePiece with fairseq's id offset.
        TinyCase(
            "xlm-roberta",
            "XLMRobertaConfig",
            "XLMRobertaForSequenceClassification",
            "xlmr-spm",
            labels=("기쁨", "슬픔", "분노", "놀람"),
            problem_type="multi_label_classification",
            config={"max_position_embeddings": 130, "type_vocab_size": 1},
        ),
        # Not a seed config (multi-label, LABEL_n): the seed ELECTRA layout takes it.
        TinyCase(
            "electra",
            "ElectraConfig",
            "ElectraForSequenceClassification",
            "wordpiece",
            num_labels=5,
            problem_type="multi_label_classification",
            config={"embedding_size": 32, "max_position_embeddings": 128},
        ),
        # DeBERTa-v3 style: relative positions only, no segment embedding, SentencePiece to convert.
        TinyCase(
            "deberta-v2",
            "DebertaV2Config",
            "DebertaV2ForTokenClassification",
            "deberta-spm",
            labels=NER_LABELS,
            config={
                "max_position_embeddings": 128,
                "type_vocab_size": 0,
                "position_biased_input": False,
                "relative_attention": True,
                "pos_att_type": ["p2c", "c2p"],
                "position_buckets": 32,
                "max_relative_positions": -1,
                "norm_rel_ebd": "layer_norm",
                "share_att_key": True,
            },
        ),
    )
}


def _wordpiece(texts: list[str], out: Path) -> Any:
    from kolite_export.standins.vocab import VocabSpec, choose_pieces, count_words, wordpiece_tokenizer
    from transformers import BertTokenizerFast

    spec = VocabSpec("tiny-wordpiece", 1000, ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"))
    tok = wordpiece_tokenizer(choose_pieces(count_words(texts), spec))
    specials = {f"{kind}_token": f"[{kind.upper()}]" for kind in ("unk", "pad", "cls", "sep", "mask")}
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=False, **specials)  # no model_max_length: unset


def _byte_bpe(texts: list[str], out: Path) -> Any:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(texts, vocab_size=800, min_frequency=2, special_tokens=specials, show_progress=False)
    vocab, merges = bpe.save_model(str(out))
    return RobertaTokenizerFast(vocab_file=vocab, merges_file=merges, model_max_length=512)


def _spm_model(texts: list[str], path: Path, **ids: Any) -> Path:
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, vocab_size=1500, model_type="unigram", minloglevel=2, **ids
    )
    path.write_bytes(model.getvalue())
    return path


def _xlmr_spm(texts: list[str], out: Path) -> Any:
    from transformers import XLMRobertaTokenizerFast

    # XLM-R's own spm ids (<unk>=0 <s>=1 </s>=2); the tokenizer shifts them by fairseq's offset (<pad>=1).
    path = _spm_model(texts, out / "sentencepiece.bpe.model", unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    return XLMRobertaTokenizerFast(vocab_file=str(path), model_max_length=128)


def _deberta_spm(texts: list[str], out: Path) -> Any:
    from transformers import DebertaV2Tokenizer

    # mDeBERTa's spm ids: [PAD]=0 [CLS]=1 [SEP]=2 [UNK]=3.
    path = _spm_model(
        texts,
        out / "spm.model",
        pad_id=0,
        pad_piece="[PAD]",
        bos_id=1,
        bos_piece="[CLS]",
        eos_id=2,
        eos_piece="[SEP]",
        unk_id=3,
        unk_piece="[UNK]",
        user_defined_symbols=["[MASK]"],
    )
    return DebertaV2Tokenizer(vocab_file=str(path), model_max_length=512)  # slow: saves spm.model only


TOKENIZERS: dict[str, Callable[[list[str], Path], Any]] = {
    "wordpiece": _wordpiece,
    "byte-bpe": _byte_bpe,
    "xlmr-spm": _xlmr_spm,
    "deberta-spm": _deberta_spm,
}
# Files the hub checkpoints of a family do not ship, removed after saving so the export must build them.
DROP_FILES = {"byte-bpe": ("tokenizer.json",)}


def _shape_head(model: Any, case: TinyCase) -> None:
    """Spread a random head's logits like a trained one's, so argmax is not a coin toss that int8 noise flips (the
    stand-ins' recipe): a larger output layer; for NER, "O" on most tokens."""
    import torch

    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == model.num_labels][-1]
    with torch.no_grad():
        head.weight.mul_(8.0)
        if case.task == "token-classification":
            head.bias[0] = 2.5 * head.weight.norm(dim=1).mean()


def build_tiny_checkpoint(case: TinyCase, corpus: Path, out: Path) -> Path:
    """Write ``case`` (2 layers, hidden 32, random weights from seed 0) into ``out``; returns ``out``."""
    import torch
    import transformers
    from kolite_export.standins.vocab import read_nsmc_texts

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = TOKENIZERS[case.tokenizer](read_nsmc_texts(corpus, CORPUS_TEXTS), out)
    labels = {"id2label": dict(enumerate(case.labels))} if case.labels else {"num_labels": case.num_labels}
    config = getattr(transformers, case.config_class)(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=tokenizer.pad_token_id,
        problem_type=case.problem_type,
        **labels,
        **case.config,
    )
    torch.manual_seed(0)
    model = getattr(transformers, case.model_class)(config).eval()
    _shape_head(model, case)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    for name in DROP_FILES.get(case.tokenizer, ()):
        (out / name).unlink()
    return out
