"""The accuracy gate: every variant against the PyTorch original, on the same token ids.

Numbers (all recorded in the manifest): max/mean |Δlogit|, label agreement (argmax) with the Wilson lower 95 %
bound, accuracy and Δaccuracy where gold labels exist, and for token classification the token-label agreement (and
its lower bound) and entity agreement (micro F1 of the entity sets decoded from BIO tags with the runtime's grouping,
PyTorch as reference).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from kolite.aggregation import bio_spans

from kolite_export.errors import AtolError, EntityAgreementError, LabelAgreementError, ShapeError, TokenizerParityError
from kolite_export.gates import Gate, wilson_lower_bound
from kolite_export.validation_data import ValidationSet

if TYPE_CHECKING:
    from kolite_export.layouts.base import LoadedCheckpoint

__all__ = [
    "EncodedSet",
    "Gate",
    "check_tokenizer_parity",
    "encode_set",
    "evaluate_gate",
    "onnx_outputs",
    "reference_outputs",
    "runtime_sequences",
    "served_outputs",
]


@dataclass(frozen=True)
class EncodedSet:
    """Validation texts tokenized once, in length-sorted batches (``order`` maps batch rows back to texts)."""

    batches: tuple[dict[str, np.ndarray], ...]
    order: np.ndarray
    lengths: np.ndarray  # non-padding tokens per text, in text order


def encode_set(checkpoint: LoadedCheckpoint, texts: tuple[str, ...], batch_size: int = 64) -> EncodedSet:
    tok = checkpoint.tokenizer
    ids = tok(list(texts), truncation=True, max_length=checkpoint.max_length)["input_ids"]
    lengths = np.array([len(x) for x in ids])
    order = np.argsort(lengths, kind="stable")
    batches = []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = int(lengths[rows].max())
        input_ids = np.full((len(rows), width), checkpoint.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            input_ids[r, : lengths[i]] = ids[i]
            mask[r, : lengths[i]] = 1
        batch = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        batches.append({name: batch[name] for name in checkpoint.inputs})
    return EncodedSet(tuple(batches), order, lengths)


def _unbatch(encoded: EncodedSet, outputs: Iterator[np.ndarray], token_level: bool) -> list[np.ndarray]:
    result: list[np.ndarray] = [np.empty(0)] * len(encoded.order)
    position = 0
    for out in outputs:
        for row in out:
            i = int(encoded.order[position])
            result[i] = row[: encoded.lengths[i]] if token_level else row
            position += 1
    return result


def reference_outputs(checkpoint: LoadedCheckpoint, encoded: EncodedSet) -> list[np.ndarray]:
    import torch

    def run() -> Iterator[np.ndarray]:
        with torch.inference_mode():
            for batch in encoded.batches:
                args = [torch.from_numpy(batch[name]) for name in checkpoint.inputs]
                yield checkpoint.module(*args).float().numpy()

    return _unbatch(encoded, run(), checkpoint.task == "token-classification")


def onnx_outputs(session: Any, checkpoint: LoadedCheckpoint, encoded: EncodedSet) -> list[np.ndarray]:
    def run() -> Iterator[np.ndarray]:
        for batch in encoded.batches:
            yield np.asarray(session.run(["logits"], batch)[0], dtype=np.float32)

    return _unbatch(encoded, run(), checkpoint.task == "token-classification")


def runtime_sequences(tokenizer_json: Path, max_length: int, texts: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    """The token ids the runtime feeds for ``texts``: kolite's own encoder (normalisation, truncation) on the
    staged tokenizer.json (``check_tokenizer_parity`` holds them equal to the HF tokenizer's ids)."""
    from kolite.tokenization import TextEncoder

    encoder = TextEncoder(tokenizer_json.read_text(encoding="utf-8"), max_length)
    return tuple(tuple(ids) for ids in encoder.encode(list(texts)).sequences)


def served_outputs(
    graph: Path | bytes, sequences: tuple[tuple[int, ...], ...], pad_token_id: int, batch_size: int = 32
) -> list[np.ndarray]:
    """The graph's logits per sequence exactly as ``kolite.load(...).logits`` computes them: the runtime's session
    (``kolite.session``: options, disabled optimizers, threads from the CPU budget, parallel one-thread sessions)
    and planner (``kolite.batching.run_planned``, the default batch size). A gate figure is then a served figure."""
    from kolite.batching import CALL_OVERHEAD_TOKENS, run_planned
    from kolite.providers import cpu_device
    from kolite.session import OnnxModel

    data = graph if isinstance(graph, bytes) else Path(graph).read_bytes()
    name = "graph" if isinstance(graph, bytes) else str(graph)
    beside = None if isinstance(graph, bytes) else Path(graph).parent  # repair's spliced graphs share one weights file
    model = OnnxModel(name, cpu_device(), read_graph=lambda: data, external_data_dir=beside)
    try:
        outputs = run_planned(sequences, model.run_many, pad_token_id, batch_size, None, CALL_OVERHEAD_TOKENS["cpu"])
        return [np.array(o, dtype=np.float32) for o in outputs]
    finally:
        model.close()


def _gold_index(labels: tuple[str, ...], gold: tuple[str, ...]) -> np.ndarray | None:
    index = {label: i for i, label in enumerate(labels)}
    if not all(g in index for g in set(gold)):
        return None  # the model's label names are not the data's (e.g. LABEL_0): no accuracy to report
    return np.array([index[g] for g in gold])


def _sequence_numbers(
    ref: list[np.ndarray], out: list[np.ndarray], labels: tuple[str, ...], gold: tuple[str, ...] | None
) -> dict[str, Any]:
    ref_pred = np.array([r.argmax() for r in ref])
    out_pred = np.array([o.argmax() for o in out])
    agreeing = int((ref_pred == out_pred).sum())
    numbers: dict[str, Any] = {
        "label_agreement": agreeing / max(len(ref_pred), 1),
        "label_agreement_low95": wilson_lower_bound(agreeing, len(ref_pred)),
    }
    gold_index = _gold_index(labels, gold) if gold else None
    if gold_index is not None:
        ref_acc, out_acc = float((ref_pred == gold_index).mean()), float((out_pred == gold_index).mean())
        numbers.update(
            accuracy_reference=ref_acc, accuracy=out_acc, delta_accuracy_pt=round(100 * (out_acc - ref_acc), 4)
        )
    return numbers


def _token_numbers(ref: list[np.ndarray], out: list[np.ndarray], labels: tuple[str, ...]) -> dict[str, Any]:
    agree = total = 0
    true_pos = n_ref = n_out = sentences_equal = 0
    for r, o in zip(ref, out, strict=True):
        # Drop [CLS] and [SEP]: their tags are never decoded into entities.
        r_pred, o_pred = r.argmax(-1)[1:-1], o.argmax(-1)[1:-1]
        agree += int((r_pred == o_pred).sum())
        total += len(r_pred)
        r_ents = set(bio_spans([labels[i] for i in r_pred]))
        o_ents = set(bio_spans([labels[i] for i in o_pred]))
        true_pos += len(r_ents & o_ents)
        n_ref += len(r_ents)
        n_out += len(o_ents)
        sentences_equal += r_ents == o_ents
    f1 = 1.0 if n_ref + n_out == 0 else 2 * true_pos / (n_ref + n_out)
    return {
        "token_label_agreement": agree / max(total, 1),
        "token_label_agreement_low95": wilson_lower_bound(agree, total),
        "entity_agreement": f1,
        "sentence_entity_match": sentences_equal / max(len(ref), 1),
        "entities_reference": n_ref,
    }


def evaluate_gate(
    variant: str,
    gate: Gate,
    checkpoint: LoadedCheckpoint,
    ref: list[np.ndarray],
    out: list[np.ndarray],
    data: ValidationSet,
) -> dict[str, Any]:
    """Numbers of ``out`` against ``ref``; raises the typed error of the first gate that fails (numbers attached)."""
    for r, o in zip(ref, out, strict=True):
        if r.shape != o.shape:
            raise ShapeError(f"{variant}: ONNX logits shape {o.shape} != PyTorch {r.shape}")
    diffs = [np.abs(r - o) for r, o in zip(ref, out, strict=True)]
    numbers: dict[str, Any] = {
        "texts": len(ref),
        "data": data.name,
        "max_abs_logit_diff": float(max(d.max() for d in diffs)),
        "mean_abs_logit_diff": float(np.mean([d.mean() for d in diffs])),
    }
    token_level = checkpoint.task == "token-classification"
    if token_level:
        numbers.update(_token_numbers(ref, out, checkpoint.labels))
    else:
        numbers.update(_sequence_numbers(ref, out, checkpoint.labels, data.labels))
    key = "token_label_agreement" if token_level else "label_agreement"
    agreement, low95 = numbers[key], numbers[f"{key}_low95"]
    checks: list[tuple[bool, Callable[[], Exception]]] = [
        (
            gate.atol is not None and numbers["max_abs_logit_diff"] > gate.atol,
            lambda: AtolError(f"{variant}: max |Δlogit| {numbers['max_abs_logit_diff']:.2e} > {gate.atol}", numbers),
        ),
        (
            gate.min_label_agreement is not None and agreement < gate.min_label_agreement,
            lambda: LabelAgreementError(
                f"{variant}: label agreement {agreement:.4%} (lower 95% bound {low95:.2%}) < "
                f"{gate.min_label_agreement:.2%}",
                numbers,
            ),
        ),
        (
            token_level
            and gate.min_entity_agreement is not None
            and numbers["entity_agreement"] < gate.min_entity_agreement,
            lambda: EntityAgreementError(
                f"{variant}: entity agreement {numbers['entity_agreement']:.4f} < {gate.min_entity_agreement}",
                numbers,
            ),
        ),
    ]
    for failed, error in checks:
        if failed:
            raise error()
    return numbers


def check_tokenizer_parity(
    tokenizer_json: Path, checkpoint: LoadedCheckpoint, texts: tuple[str, ...]
) -> dict[str, Any]:
    """The runtime's own encoder (``kolite.tokenization.TextEncoder`` on tokenizer.json, normalisation included)
    must give the HF tokenizer's ids on every text."""
    from kolite.tokenization import TextEncoder

    encoder = TextEncoder(tokenizer_json.read_text(encoding="utf-8"), checkpoint.max_length)
    runtime_ids = encoder.encode(list(texts)).sequences
    hf_ids = checkpoint.tokenizer(list(texts), truncation=True, max_length=checkpoint.max_length)["input_ids"]
    mismatched = [i for i, (a, b) in enumerate(zip(runtime_ids, hf_ids, strict=True)) if list(a) != list(b)]
    numbers = {"texts": len(texts), "mismatched": len(mismatched)}
    if mismatched:
        i = mismatched[0]
        raise TokenizerParityError(
            f"tokenizer.json disagrees with the HF tokenizer on {len(mismatched)}/{len(texts)} texts, "
            f"first {texts[i]!r}: {runtime_ids[i][:12]} vs {hf_ids[i][:12]}",
            numbers,
        )
    return numbers
