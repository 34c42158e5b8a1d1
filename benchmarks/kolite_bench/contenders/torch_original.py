"""The PyTorch original, exactly as the seed model cards use it: AutoTokenizer + AutoModelFor...Classification.

``torch`` is the seed-card recipe (padding="max_length", max_length=128); ``torch-longest`` pads each batch to its
longest text. For the custom ko-sroberta checkpoint (003) the PyTorch module is built by ``kolite_export``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kolite_bench.contenders.base import Contender, Outputs

__all__ = ["TorchContender", "model_files_bytes"]


def model_files_bytes(folder: str) -> int:
    """Bytes of the weight files in a checkpoint folder (what a user downloads to run the original)."""
    path = Path(folder)
    if not path.is_dir():
        return 0
    patterns = ("*.bin", "*.safetensors", "*.pt")
    return sum(f.stat().st_size for pattern in patterns for f in path.rglob(pattern))


class TorchContender(Contender):
    def load(self) -> None:
        import torch

        torch.set_num_threads(self.spec.threads)
        self._torch = torch
        self.padding = self.spec.options.get("padding", "max_length")
        if self.spec.layout == "sroberta":
            from kolite_bench.contenders.sroberta import load_sroberta

            self.tokenizer, self.model, self.id2label = load_sroberta(self.spec.source)
        else:
            from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

            auto = AutoModelForTokenClassification if self.ner else AutoModelForSequenceClassification
            self.tokenizer = AutoTokenizer.from_pretrained(self.spec.source)
            self.model = auto.from_pretrained(self.spec.source)
            self.id2label = self.model.config.id2label
        self.model.eval()

    @property
    def ner(self) -> bool:
        return self.spec.task == "token-classification"

    def predict(self, texts: list[str]) -> Outputs:
        encoded = self.tokenizer(
            texts,
            padding=self.padding,
            truncation=True,
            max_length=self.spec.max_length,
            return_tensors="pt",
            return_offsets_mapping=self.ner,
        )
        offsets = encoded.pop("offset_mapping", None)
        with self._torch.inference_mode():
            output = self.model(**encoded)
        logits = output.logits if hasattr(output, "logits") else output
        ids = logits.argmax(-1).numpy()
        return self.outputs_from_label_ids(ids, offsets)

    def model_bytes(self) -> int:
        return model_files_bytes(self.spec.source)

    def describe(self) -> dict[str, Any]:
        return {
            "stack": "torch + transformers",
            "padding": self.spec.options.get("padding", "max_length"),
            "max_length": self.spec.max_length,
            "batching": "file order, one tokenizer call per batch",
            "torch_threads": self.spec.threads,
        }
