"""Helpers shared by the tests of several packages: a free port, and the PyTorch original's logits.

(Fixtures live in the conftest.py files: the tiny artifacts in tests/conftest.py, the served pair in
tests/server/conftest.py.)
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["checkpoint_logits", "free_port", "original_logits", "transformers_logits"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def checkpoint_logits(checkpoint: Any, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The PyTorch module of a checkpoint loaded by kolite's layouts, on texts tokenized as the runtime does:
    (the int64 feeds an ONNX graph of it takes, its logits)."""
    import torch
    from kolite_export.onnx_export import encode

    batch = encode(checkpoint, list(texts))
    with torch.inference_mode():
        logits = checkpoint.module(*[batch[name] for name in checkpoint.inputs]).numpy()
    return {name: tensor.numpy() for name, tensor in batch.items()}, logits


def transformers_logits(folder: Path, texts: Sequence[str], max_length: int,
                        model_class: str = "AutoModelForSequenceClassification") -> tuple[np.ndarray, np.ndarray]:
    """The checkpoint's own answer, straight from transformers (not through kolite's layouts): (logits, tokens per
    text)."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = getattr(transformers, model_class).from_pretrained(str(folder), attn_implementation="eager").eval()
    batch = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**batch).logits.numpy()
    return logits, batch["attention_mask"].sum(1).numpy()


def original_logits(folder: Path, texts: Sequence[str], max_length: int) -> np.ndarray:
    """Logits of a seed's PyTorch original: transformers for HF checkpoints, the seed's own module (ko-sroberta's
    ``best.pt``) through kolite's layout otherwise."""
    if (folder / "config.json").is_file():
        return transformers_logits(folder, texts, max_length)[0]
    from kolite_export.layouts import load_checkpoint

    return checkpoint_logits(load_checkpoint(folder), texts)[1]
