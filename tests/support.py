"""Helpers shared by the tests of several packages: a free port, and the PyTorch original's logits.

(Fixtures live in the conftest.py files: the tiny artifacts in tests/conftest.py, the served pair in
tests/server/conftest.py.)
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["checkpoint_logits", "free_port", "original_logits", "ray_head", "transformers_logits"]


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


@contextmanager
def ray_head(env: dict[str, str], prefix: str) -> Iterator[str]:
    """A Ray head node of our own on 127.0.0.1 (``ray start --head --block``, one CPU, its own short temp dir:
    Ray's socket paths must fit 107 bytes), stopped by signalling that one process — never ``ray stop``, which
    would stop every Ray instance on the machine. Yields its address."""
    import shutil
    import subprocess
    import sys
    import tempfile
    import time

    temp_dir = tempfile.mkdtemp(prefix=prefix)
    port = free_port()
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={port}"]
    command += ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={temp_dir}"]
    log = Path(temp_dir) / "head.log"
    with log.open("wb") as sink:
        head = subprocess.Popen([*command, "--disable-usage-stats"], env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        # --block logs this once every process of the node is up, then waits for a signal.
        while "Ray runtime started" not in log.read_text(errors="replace"):
            assert head.poll() is None, log.read_text(errors="replace")[-2000:]
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()  # it stops the processes it started (GCS, raylet...) and exits
        head.wait(timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)
