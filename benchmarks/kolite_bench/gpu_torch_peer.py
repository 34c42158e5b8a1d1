"""The torch peer of the CUDA check: the seed's PyTorch model in fp16 on CUDA (fp32 on CPU in a dry run), fed the
same token ids as kolite, sorted by length and padded per batch like kolite's planner, so both see the same work."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["make_runner", "torch_peer"]


def make_runner(model: Any, encoder: Any, device: str, per_token: bool) -> Callable[[Sequence[str], int], list]:
    """texts, batch size → one output per text: kolite's encoder (the same ids), sorted by length, padded per batch."""
    import torch

    pad = encoder.manifest.pad_token_id

    def run_texts(batch_texts: Sequence[str], batch: int) -> list[np.ndarray]:
        sequences = encoder.encode(list(batch_texts)).sequences
        order = np.argsort([-len(s) for s in sequences], kind="stable")
        outputs: list[Any] = [None] * len(sequences)
        with torch.inference_mode():
            for begin in range(0, len(order), batch):
                rows = order[begin : begin + batch]
                width = max(len(sequences[i]) for i in rows)
                ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, i in enumerate(rows):
                    ids[r, : len(sequences[i])] = torch.tensor(sequences[i])
                    mask[r, : len(sequences[i])] = 1
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu().numpy()
                for r, i in enumerate(rows):
                    outputs[i] = logits[r, : len(sequences[i])] if per_token else logits[r]
        return outputs

    return run_texts


def load_peer(weights: Path, device: str, dtype: Any) -> tuple[Any, bool]:
    """The checkpoint in ``weights`` as a transformers model on ``device``; True if it tags tokens."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(weights)
    per_token = "TokenClassification" in (config.architectures or [""])[0]
    auto = (transformers.AutoModelForTokenClassification if per_token
            else transformers.AutoModelForSequenceClassification)
    try:
        model = auto.from_pretrained(weights, dtype=dtype)
    except TypeError:  # transformers 4.x names it torch_dtype
        model = auto.from_pretrained(weights, torch_dtype=dtype)
    return model.to(device).eval(), per_token


def torch_peer(seed_dir: Path, texts: Sequence[str], reference: Sequence[np.ndarray], args: argparse.Namespace,
               speed: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        return {"skipped": f"torch/transformers not installed ({exc})"}
    weights = seed_dir / "torch"
    if not weights.is_dir():
        return {"skipped": "no peer weights in the payload"}
    import kolite

    cuda = torch.cuda.is_available() and not args.dry_run
    device, dtype = ("cuda", torch.float16) if cuda else ("cpu", torch.float32)
    model, per_token = load_peer(weights, device, dtype)
    encoder = kolite.load(seed_dir / "artifact", variant="int8-static", device="cpu", parallel=0)

    run_texts = make_runner(model, encoder, device, per_token)

    outputs = run_texts(texts, 256)
    if per_token:
        ours = np.concatenate([o.argmax(-1) for o in outputs])
        theirs = np.concatenate([r.argmax(-1) for r in reference])
    else:
        ours = np.array([o.argmax() for o in outputs])
        theirs = np.array([r.argmax() for r in reference])
    deltas = [float(np.max(np.abs(o - r))) for o, r in zip(outputs, reference, strict=True)]
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    row: dict[str, Any] = {
        "torch": torch.__version__, "transformers": transformers.__version__, "device": device, "dtype": str(dtype),
        "fidelity": {"label_agreement": float((ours == theirs).mean()), "max_abs_logit_delta": max(deltas)},
        "speed": speed(run_texts, texts, args.bs1_texts, args.batch_sizes, args.repeats, None, sync),
    }
    if cuda:
        row["torch_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    encoder.close()
    return row
