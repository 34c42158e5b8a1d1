"""Trace a loaded checkpoint to an fp32 ONNX graph with dynamic batch and sequence axes."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from kolite_export.layouts.base import LoadedCheckpoint

__all__ = ["OPSET", "TRACE_TEXTS", "dynamic_axes", "encode", "export_fp32"]

OPSET = 17
# Two texts of different length: the traced batch is 2 and padded, so neither dimension nor an all-ones mask
# can be baked into the graph.
TRACE_TEXTS = ("이 영화 정말 재미있어요. 배우들의 연기도 훌륭했고 결말도 좋았습니다.", "별로")


def dynamic_axes(checkpoint: LoadedCheckpoint) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in checkpoint.inputs}
    axes["logits"] = {0: "batch", 1: "sequence"} if checkpoint.task == "token-classification" else {0: "batch"}
    return axes


def encode(checkpoint: LoadedCheckpoint, texts: list[str] | tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Tokenize like the runtime does: right truncation at ``max_length``, pad to the longest with the pad id."""
    batch = checkpoint.tokenizer(
        list(texts), padding="longest", truncation=True, max_length=checkpoint.max_length, return_tensors="pt"
    )
    encoded = {}
    for name in checkpoint.inputs:
        encoded[name] = batch[name] if name in batch else torch.zeros_like(batch["input_ids"])
    return encoded


def export_fp32(checkpoint: LoadedCheckpoint, path: Path) -> Path:
    """Write the fp32 graph (inputs ``checkpoint.inputs`` int64 [batch, sequence], output ``logits``)."""
    module = checkpoint.module.eval()
    example = encode(checkpoint, TRACE_TEXTS)
    args = tuple(example[name] for name in checkpoint.inputs)
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in torch 2.9+ but still the one that traces transformers'
        # eager attention into plain ONNX ops the onnxruntime fusions recognise.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            input_names=list(checkpoint.inputs),
            output_names=["logits"],
            dynamic_axes=dynamic_axes(checkpoint),
            opset_version=OPSET,
            do_constant_folding=True,
        )
    module.eval()  # export restores the training flag of the wrapper; keep dropout off for validation
    return path
