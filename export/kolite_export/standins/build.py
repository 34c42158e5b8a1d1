"""Write stand-in checkpoints in each seed's exact file layout, with deterministic weights.

The hub is unreachable here, so tests and benchmarks run on stand-ins: same architecture family, vocabulary size,
special-token ids, labels and files as the seed, weights drawn from ``torch.manual_seed``. Weights are random, so a
stand-in's *answers* mean nothing; export, quantization and the gates exercise exactly the seed's code paths.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import (
    BertTokenizerFast,
    ElectraConfig,
    ElectraForSequenceClassification,
    ElectraForTokenClassification,
    ElectraTokenizerFast,
    RobertaConfig,
)

from kolite_export.catalogue import SeedModel
from kolite_export.sroberta import SentenceTypeClassifier
from kolite_export.standins.presets import ArchPreset

__all__ = ["WRITERS", "write_standin"]

STANDIN_INFO = "standin.json"
# Bump when the builder changes what it writes: cached stand-ins of another format are rebuilt.
STANDIN_FORMAT = 5
SROBERTA_BASE = "jhgan/ko-sroberta-multitask"
SROBERTA_MAX_LENGTH = 128
# Real texts a full-size stand-in's classification head is fitted to (see _aim_head_at_feature_clusters).
PROBE_TEXTS = 512
# Spread (standard deviation over real text) of those heads' logits, about a trained 2-6 label classifier's.
HEAD_LOGIT_STD = 3.0


def _sharpen_head(head: torch.nn.Linear, gain: float) -> None:
    # Random heads give near-equal logits, so argmax would flip on rounding noise and no int8 gate could
    # mean anything; a larger head spreads the logits the way a trained classifier does.
    with torch.no_grad():
        head.weight.mul_(gain)


def _encoder_fields(preset: ArchPreset, tok: Tokenizer) -> dict[str, int]:
    """The config fields every stand-in encoder takes from its architecture preset and vocabulary."""
    return {
        "vocab_size": tok.get_vocab_size(),
        "hidden_size": preset.hidden_size,
        "num_hidden_layers": preset.num_hidden_layers,
        "num_attention_heads": preset.num_attention_heads,
        "intermediate_size": preset.intermediate_size,
        "max_position_embeddings": preset.max_position_embeddings,
        "type_vocab_size": preset.type_vocab_size,
        "pad_token_id": tok.token_to_id("[PAD]"),
    }


def _electra_config(seed: SeedModel, preset: ArchPreset, tok: Tokenizer) -> ElectraConfig:
    return ElectraConfig(
        **_encoder_fields(preset, tok),
        embedding_size=preset.embedding_size,
        num_labels=len(seed.labels),
        id2label=dict(enumerate(seed.labels)),
        label2id={label: i for i, label in enumerate(seed.labels)},
        problem_type="single_label_classification" if seed.task == "text-classification" else None,
    )


def _electra_tokenizer(tok: Tokenizer, model_max_length: int) -> ElectraTokenizerFast:
    return ElectraTokenizerFast(
        tokenizer_object=tok,
        do_lower_case=False,
        model_max_length=model_max_length,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _classifier_features(model: ElectraForSequenceClassification, tok: Tokenizer, texts: list[str]) -> torch.Tensor:
    """What the seq-cls head's output layer sees for each text: gelu(dense(hidden state of [CLS]))."""
    pad_id = tok.token_to_id("[PAD]")
    features = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            encodings = tok.encode_batch(texts[start : start + 64])
            width = max(len(e.ids) for e in encodings)
            ids = torch.tensor([e.ids + [pad_id] * (width - len(e.ids)) for e in encodings])
            mask = (ids != pad_id).long()
            cls = model.electra(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
            head = model.classifier
            features.append(head.activation(head.dense(cls)))
    return torch.cat(features)


def _kmeans(points: torch.Tensor, k: int, iterations: int = 50) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    centroids = points[torch.randperm(len(points), generator=generator)[:k]].clone()
    for _ in range(iterations):
        nearest = torch.cdist(points, centroids).argmin(1)
        centroids = torch.stack(
            [points[nearest == j].mean(0) if (nearest == j).any() else centroids[j] for j in range(k)]
        )
    return centroids


def _aim_head_at_feature_clusters(model: ElectraForSequenceClassification, tok: Tokenizer, texts: list[str]) -> None:
    # A random output layer on a full-size random encoder puts many texts right at its decision boundary, so int8
    # noise flipped them and no quantization gate could mean anything. Trained heads draw their
    # boundaries through sparse regions between clusters of texts. Here the head is a nearest-centroid classifier
    # over k-means clusters (k = labels) of the encoder's features on real text: logit_j = 2 c_j.f - |c_j|^2.
    # 001 full size, export gate on 256 NSMC texts: int8 agreement 97.3 % with a random head, 99.6 % with this one.
    features = _classifier_features(model, tok, texts).double()
    centroids = _kmeans(features, model.config.num_labels)
    # The same argmax written around the centroids' mean m (offsets d_j = c_j - m): 2 d_j.(f - m) - |d_j|^2, scaled
    # to a trained classifier's logit spread. Raw 2 c.f - |c|^2 logits are in the hundreds, and the fp32 gate's
    # absolute tolerance would then measure the size of the logits rather than the export.
    mean = centroids.mean(0)
    offsets = centroids - mean
    weight = 2 * offsets
    bias = -2 * offsets @ mean - (offsets * offsets).sum(1)
    scale = HEAD_LOGIT_STD / (features @ weight.T + bias).std().item()
    out_proj = model.classifier.out_proj
    with torch.no_grad():
        out_proj.weight.copy_((scale * weight).to(out_proj.weight.dtype))
        out_proj.bias.copy_((scale * bias).to(out_proj.bias.dtype))


def _write_electra(
    seed: SeedModel, preset: ArchPreset, tok: Tokenizer, out: Path, torch_seed: int, probe_texts: list[str]
) -> None:
    torch.manual_seed(torch_seed)
    config = _electra_config(seed, preset, tok)
    if seed.task == "token-classification":
        model = ElectraForTokenClassification(config)
        _sharpen_head(model.classifier, 8.0)
        # Like a trained tagger, most tokens are "O" (~95%): random 31-way argmaxes everywhere would make every
        # token a near-tie, which no int8 gate could meaningfully check.
        with torch.no_grad():
            model.classifier.bias[0] = 5.5 * model.classifier.weight.norm(dim=1).mean()
    else:
        model = ElectraForSequenceClassification(config)
        if probe_texts:
            _aim_head_at_feature_clusters(model, tok, probe_texts)
        else:
            _sharpen_head(model.classifier.out_proj, 8.0)
    model.save_pretrained(out, safe_serialization=False)  # the seeds ship pytorch_model.bin
    _electra_tokenizer(tok, 512).save_pretrained(out)


def _write_sroberta(
    seed: SeedModel, preset: ArchPreset, tok: Tokenizer, out: Path, torch_seed: int, probe_texts: list[str]
) -> None:
    torch.manual_seed(torch_seed)
    encoder_config = RobertaConfig(
        **_encoder_fields(preset, tok),
        bos_token_id=tok.token_to_id("[CLS]"),
        eos_token_id=tok.token_to_id("[SEP]"),
    )
    model = SentenceTypeClassifier(encoder_config, num_labels=len(seed.labels), dropout=0.1)
    _sharpen_head(model.classifier, 8.0)
    torch.save(model.state_dict(), out / "best.pt")
    BertTokenizerFast(
        tokenizer_object=tok,
        do_lower_case=False,
        model_max_length=512,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    ).save_pretrained(out / "tokenizer")
    label_mapping = {
        "label2id": {label: i for i, label in enumerate(seed.labels)},
        "id2label": {str(i): label for i, label in enumerate(seed.labels)},
    }
    encoder = encoder_config.to_dict()
    encoder.pop("_attn_implementation_autoset", None)
    model_config = {
        "base_model": SROBERTA_BASE,
        "architecture": "SentenceTypeClassifier",
        "pooling": "mean",
        "dropout": 0.1,
        "num_labels": len(seed.labels),
        "max_length": SROBERTA_MAX_LENGTH,
        # The encoder's config, so the checkpoint loads without reaching the hub for the base model.
        "encoder_config": encoder,
    }
    inference_config = {
        "checkpoint": "best.pt",
        "tokenizer_dir": "tokenizer",
        "label_mapping": "label_mapping.json",
        "model_config": "model_config.json",
        "max_length": SROBERTA_MAX_LENGTH,
        "padding": "max_length",
        "truncation": True,
    }
    for name, data in (
        ("label_mapping.json", label_mapping),
        ("model_config.json", model_config),
        ("inference_config.json", inference_config),
    ):
        (out / name).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


Writer = Callable[[SeedModel, ArchPreset, Tokenizer, Path, int, list[str]], None]
WRITERS: dict[str, Writer] = {
    "electra-sequence-classification": _write_electra,
    "electra-token-classification": _write_electra,
    "sroberta-mean-pooling": _write_sroberta,
}


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_standin(
    seed: SeedModel, size: str, preset: ArchPreset, tok: Tokenizer, out: Path, probe_texts: list[str]
) -> Path:
    """Write the stand-in into ``out`` atomically (built in a temp folder beside it, then renamed).

    ``probe_texts``: real texts a sequence-classification head is fitted to (``_aim_head_at_feature_clusters``);
    empty for tiny stand-ins, whose random heads stay.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        torch_seed = int(seed.seed_id)
        WRITERS[seed.layout](seed, preset, tok, tmp, torch_seed, probe_texts)
        info = {
            "format": STANDIN_FORMAT,
            "seed": seed.seed_id,
            "stands_in_for": seed.hub_id or seed.name,
            "size": size,
            "weights": f"random init, torch.manual_seed({torch_seed})"
            + (
                ", head = nearest centroid of k-means clusters of its features on real text"
                if seed.layout == "electra-sequence-classification" and probe_texts
                else ""
            ),
            "layout": seed.layout,
        }
        (tmp / STANDIN_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private (0700)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
