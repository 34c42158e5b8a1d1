"""OpenVINO: the same PyTorch original converted by ``ov.convert_model`` and quantized to int8 by NNCF's
post-training static quantization, run by the OpenVINO runtime in one of two modes.

- ``openvino-int8-latency``: ``PERFORMANCE_HINT=LATENCY``, one stream, one infer request at a time.
- ``openvino-int8-throughput``: ``PERFORMANCE_HINT=THROUGHPUT`` (the plugin derives the streams from the thread
  budget), whole batches spread over the streams by an ``AsyncInferQueue`` with one infer request per batch of the
  pass, so every batch is in flight at once and no stream waits for a free request.

Before a timed pass every input shape of that pass runs on every infer request at once (``warm_pass``): the CPU
plugin keeps compiled kernels per stream and per shape, so one run of the pass would leave some stream meeting a
shape for the first time inside the clock.

Both get ``INFERENCE_NUM_THREADS`` = the bench's threads and keep every other plugin default (on AMX CPUs the
plugin runs the float remainder in bf16; ``describe`` records what it chose). Texts are tokenized by the
checkpoint's own tokenizer.json through ``tokenizers`` (the Rust library transformers' fast tokenizers wrap), as
kolite does: no transformers on the serving path, so its Python overhead and import time do not handicap OpenVINO.
Quantization is NNCF's default for ``model_type=TRANSFORMER`` (SmoothQuant, fast bias correction), calibrated on
300 texts the bench never scores (``kolite_bench.calibration``). Conversion and quantization are one-off work,
cached under ``.cache/bench/openvino/`` and not part of cold start.

Why not optimum-intel's ``OVModelFor…(export=True)``: every 2.x release requires optimum ~= 2.2/2.3 (the bench pins
optimum 2.1 for optimum-onnx) and torchvision; for an encoder classifier its export is this same
``ov.convert_model`` call on the traced PyTorch module. The module comes from ``kolite_export``'s checkpoint
layouts (the original exactly as kolite's exporter traces it), so custom heads such as 003's work too.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from kolite_bench.contenders.base import Contender, Outputs, concat_outputs, source_key

__all__ = ["INSTALL_HINT", "MODES", "OpenVINOContender", "openvino_missing"]

MODES = {"openvino-int8-latency": "LATENCY", "openvino-int8-throughput": "THROUGHPUT"}
CALIBRATION_COUNT = 300
CACHE_FORMAT = 2  # bump when the cached folder's content changes
MODEL_FILE = "model.int8.xml"
TOKENIZER_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")
INSTALL_HINT = "pip install -r requirements/dev.txt (or 'kolite[bench]'), which pins openvino and nncf"


def openvino_missing() -> str | None:
    """Why the OpenVINO contenders cannot run here (a package is not installed), or None."""
    missing = [name for name in ("openvino", "nncf") if _version(name) is None]
    return f"not installed ({', '.join(missing)}): {INSTALL_HINT}" if missing else None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


class OpenVINOContender(Contender):
    @property
    def ner(self) -> bool:
        return self.spec.task == "token-classification"

    @property
    def hint(self) -> str:
        return MODES[self.spec.name]

    @property
    def calibration(self) -> dict[str, str]:
        return self.spec.options["calibration"]

    @property
    def folder(self) -> Path:
        key = "|".join([str(CACHE_FORMAT), source_key(self.spec.source), self.calibration["dataset"],
                        str(CALIBRATION_COUNT),
                        str(_version("openvino")), str(_version("nncf"))])
        return Path(self.spec.cache_dir) / "openvino" / hashlib.sha256(key.encode()).hexdigest()[:16]

    def prepare(self) -> None:
        if (self.folder / MODEL_FILE).is_file():
            return
        # A benchmark sends no usage telemetry: NNCF honours NNCF_CI, ov.convert_model's telemetry skips CI=true.
        os.environ.setdefault("NNCF_CI", "1")
        os.environ.setdefault("CI", "true")
        import nncf
        import openvino as ov
        import torch
        from kolite_export.layouts import load_checkpoint

        from kolite_bench.calibration import calibration_texts

        checkpoint = load_checkpoint(Path(self._local_source()))
        if unknown := set(checkpoint.inputs) - set(TOKENIZER_COLUMNS):
            raise ValueError(f"the OpenVINO contender feeds {', '.join(TOKENIZER_COLUMNS)}; model wants {unknown}")
        example = checkpoint.tokenizer(["영화 정말 재밌어요", "별로"], padding=True, return_tensors="pt")
        with torch.inference_mode():
            model = ov.convert_model(checkpoint.module, example_input=tuple(example[n] for n in checkpoint.inputs))
        for port, name in zip(model.inputs, checkpoint.inputs, strict=True):
            port.get_tensor().set_names({name})  # traced names can be arbitrary ("33"): feed by the tokenizer's keys
        source, texts = calibration_texts(self.calibration["dataset"], Path(self.calibration["data_dir"]),
                                          CALIBRATION_COUNT)
        tmp = self.folder.with_name(self.folder.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        checkpoint.tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        self.info = {"inputs": list(checkpoint.inputs), "pad_token_id": checkpoint.pad_token_id,
                     "pad_token": checkpoint.tokenizer.pad_token}
        tokenizer = self._tokenizer(tmp)
        items = [self._feeds(tokenizer, [text])[0] for text in texts]
        quantized = nncf.quantize(model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(items))
        ov.save_model(quantized, tmp / MODEL_FILE, compress_to_fp16=False)
        info = {**self.info, "labels": list(checkpoint.labels), "calibration_source": source,
                "calibration_texts": len(items), "openvino": _version("openvino"), "nncf": _version("nncf"),
                "source": self.spec.source}
        (tmp / "info.json").write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.rename(self.folder)

    def _local_source(self) -> str:
        if Path(self.spec.source).is_dir():
            return self.spec.source
        from huggingface_hub import snapshot_download

        return snapshot_download(self.spec.source)

    def _tokenizer(self, folder: Path) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(self.spec.max_length)
        tokenizer.enable_padding(pad_id=self.info["pad_token_id"], pad_token=self.info["pad_token"])  # to longest
        return tokenizer

    def _feeds(self, tokenizer: Any, texts: list[str]) -> tuple[dict[str, np.ndarray], Any]:
        """The model's inputs (int64, padded to the batch's longest) and, for NER, the character offsets."""
        encodings = tokenizer.encode_batch(texts)
        columns = {"input_ids": [e.ids for e in encodings], "attention_mask": [e.attention_mask for e in encodings],
                   "token_type_ids": [e.type_ids for e in encodings]}
        offsets = np.asarray([e.offsets for e in encodings]) if self.ner else None
        return {name: np.asarray(columns[name], dtype=np.int64) for name in self.info["inputs"]}, offsets

    def load(self) -> None:
        import openvino as ov

        self.info = json.loads((self.folder / "info.json").read_text(encoding="utf-8"))
        self.id2label = dict(enumerate(self.info["labels"]))
        self.tokenizer = self._tokenizer(self.folder)
        config: dict[str, Any] = {"PERFORMANCE_HINT": self.hint, "INFERENCE_NUM_THREADS": self.spec.threads}
        if self.hint == "LATENCY":
            config["NUM_STREAMS"] = 1
        self.compiled = ov.Core().compile_model(self.folder / MODEL_FILE, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.queue = ov.AsyncInferQueue(self.compiled) if self.hint == "THROUGHPUT" else None

    def predict(self, texts: list[str]) -> Outputs:
        feeds, offsets = self._feeds(self.tokenizer, texts)
        logits = self.request.infer(feeds)[self.compiled.output(0)]
        return self.outputs_from_label_ids(np.asarray(logits).argmax(-1), offsets)

    def predict_batches(self, batches: list[list[str]], progress: Callable[[int], None] | None = None) -> Outputs:
        if self.queue is None:
            return super().predict_batches(batches, progress)
        label_ids: list[Any] = [None] * len(batches)
        offsets: list[Any] = [None] * len(batches)

        def done(request: Any, index: int) -> None:  # runs on an OpenVINO thread; the argmax copies the output
            label_ids[index] = request.get_output_tensor(0).data.argmax(-1)
            if progress is not None:
                progress(len(batches[index]))

        self._queue_for(len(batches)).set_callback(done)
        for index, texts in enumerate(batches):  # tokenizing the next batch overlaps the streams' work
            feeds, offsets[index] = self._feeds(self.tokenizer, texts)
            self.queue.start_async(feeds, userdata=index)
        self.queue.wait_all()
        parts = [self.outputs_from_label_ids(ids, offs) for ids, offs in zip(label_ids, offsets, strict=True)]
        return concat_outputs(parts, self.spec.task)

    def _queue_for(self, in_flight: int) -> Any:
        """The queue, grown to hold ``in_flight`` requests (never fewer than the plugin's optimal number)."""
        import openvino as ov

        if len(self.queue) < in_flight:
            self.queue = ov.AsyncInferQueue(self.compiled, in_flight)
        return self.queue

    def warm_pass(self, batches: list[list[str]], sorted_by_length: bool) -> None:
        """Every distinct input shape of the pass with two requests per stream in flight at once (each stream takes
        one as soon as they start, so every stream runs every shape); then the pass itself once."""
        if self.queue is None:
            return super().warm_pass(batches, sorted_by_length)
        queue = self._queue_for(len(batches))
        queue.set_callback(lambda request, userdata: None)
        shapes: dict[tuple[int, ...], dict[str, np.ndarray]] = {}
        for texts in batches:
            feeds, _ = self._feeds(self.tokenizer, texts)
            shapes.setdefault(next(iter(feeds.values())).shape, feeds)
        in_flight = min(len(queue), 2 * int(str(self.compiled.get_property("NUM_STREAMS"))))
        for feeds in shapes.values():
            for _ in range(in_flight):
                queue.start_async(feeds)
            queue.wait_all()
        self.run_pass(batches, sorted_by_length)

    def model_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.folder.glob("model.int8.*"))

    def describe(self) -> dict[str, Any]:
        chosen = {}
        for key in ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "OPTIMAL_NUMBER_OF_INFER_REQUESTS",
                    "INFERENCE_PRECISION_HINT", "ENABLE_CPU_PINNING"):
            try:
                value = str(self.compiled.get_property(key))
            except RuntimeError:
                value = "unknown"
            # counts as numbers (streams and threads come back as str-like objects)
            chosen[key] = int(value) if value.isdigit() else value
        return {
            "stack": f"OpenVINO {self.info['openvino']} runtime + tokenizers (the checkpoint's tokenizer.json)",
            "quantization": f"NNCF {self.info['nncf']} nncf.quantize(model_type=TRANSFORMER) defaults (SmoothQuant,"
                            f" fast bias correction), {self.info['calibration_texts']} calibration texts from"
                            f" {self.info['calibration_source']}",
            "export": "ov.convert_model(PyTorch module from kolite_export's layout), saved without fp16 compression",
            "padding": "longest (per batch)",
            "batching": "AsyncInferQueue over the streams, one request per batch of a pass (all in flight)"
            if self.queue is not None
            else "one request at a time",
            "warm-up": "every input shape of a pass, 2 requests per stream at once; then the pass once",
            "hint": self.hint,
            "plugin": chosen,
        }
