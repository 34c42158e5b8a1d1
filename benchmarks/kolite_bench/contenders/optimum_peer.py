"""The peer: optimum's own path — ``ORTModelFor...`` export + optimum's default int8 dynamic quantization preset.

The preset follows optimum's documentation for the CPU at hand: ``AutoQuantizationConfig.avx512_vnni`` when the
CPU has VNNI, ``avx512`` with AVX-512 only, ``avx2`` otherwise (``arm64`` on ARM), always ``is_static=False``.
Export and quantization are one-off work, cached under ``.cache/bench/optimum/`` and not part of cold start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kolite_bench.contenders.base import Contender, Outputs, source_key
from kolite_bench.env import cpu_flags

__all__ = ["OptimumContender", "quantization_preset"]

QUANTIZED_FILE = "model_quantized.onnx"


def quantization_preset(flags: set[str] | None = None) -> str:
    """Name of optimum's ``AutoQuantizationConfig`` preset for this CPU."""
    flags = cpu_flags() if flags is None else flags
    if "avx512_vnni" in flags or "avx512vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "arm64"


class OptimumContender(Contender):
    @property
    def ner(self) -> bool:
        return self.spec.task == "token-classification"

    @property
    def preset(self) -> str:
        return self.spec.options.get("preset") or quantization_preset()

    @property
    def folder(self) -> Path:
        return Path(self.spec.cache_dir) / "optimum" / f"{source_key(self.spec.source)}-{self.preset}"

    def _model_class(self) -> Any:
        from optimum.onnxruntime import ORTModelForSequenceClassification, ORTModelForTokenClassification

        return ORTModelForTokenClassification if self.ner else ORTModelForSequenceClassification

    def prepare(self) -> None:
        if (self.folder / "int8" / QUANTIZED_FILE).is_file():
            return
        from optimum.onnxruntime import ORTQuantizer
        from optimum.onnxruntime.configuration import AutoQuantizationConfig
        from transformers import AutoTokenizer

        fp32_dir, int8_dir = self.folder / "fp32", self.folder / "int8"
        model = self._model_class().from_pretrained(self.spec.source, export=True)
        model.save_pretrained(fp32_dir)
        tokenizer = AutoTokenizer.from_pretrained(self.spec.source)
        tokenizer.save_pretrained(fp32_dir)
        qconfig = getattr(AutoQuantizationConfig, self.preset)(is_static=False)
        ORTQuantizer.from_pretrained(fp32_dir).quantize(save_dir=int8_dir, quantization_config=qconfig)
        tokenizer.save_pretrained(int8_dir)

    def load(self) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.spec.threads
        options.inter_op_num_threads = 1
        int8_dir = self.folder / "int8"
        self.tokenizer = AutoTokenizer.from_pretrained(int8_dir)
        self.model = self._model_class().from_pretrained(int8_dir, file_name=QUANTIZED_FILE, session_options=options)
        self.id2label = self.model.config.id2label

    def predict(self, texts: list[str]) -> Outputs:
        encoded = self.tokenizer(
            texts,
            padding="longest",
            truncation=True,
            max_length=self.spec.max_length,
            return_tensors="pt",
            return_offsets_mapping=self.ner,
        )
        offsets = encoded.pop("offset_mapping", None)
        logits = self.model(**encoded).logits
        ids = np.asarray(logits).argmax(-1)
        return self.outputs_from_label_ids(ids, offsets)

    def model_bytes(self) -> int:
        path = self.folder / "int8" / QUANTIZED_FILE
        return path.stat().st_size if path.is_file() else 0

    def describe(self) -> dict[str, Any]:
        return {
            "stack": "optimum ORTModel + onnxruntime",
            "quantization": f"AutoQuantizationConfig.{self.preset}(is_static=False) (optimum defaults otherwise)",
            "padding": "longest (per batch)",
            "intra_op_threads": self.spec.threads,
            "provider": "CPUExecutionProvider",
        }
