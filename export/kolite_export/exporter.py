"""Checkpoint → validated ONNX artifact: the one orchestration function behind ``kolite export``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kolite.manifest import Manifest, Variant

from kolite_export.artifact import file_ref, reusable_manifest, staging_dir
from kolite_export.errors import ValidationError
from kolite_export.sources import Source, fingerprint_folder, resolve_source
from kolite_export.validation_data import ValidationSet, load_validation_set

__all__ = ["ExportOptions", "ExportResult", "default_validation_data", "export"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportOptions:
    variants: tuple[str, ...] = ("fp32", "fp32-opt", "int8")
    validation_data: str | None = None  # None: chosen from the task and labels
    validation_size: int | None = 256
    revision: str | None = None
    force: bool = False
    name: str | None = None
    shared: str | None = None
    batch_size: int = 64


@dataclass(frozen=True)
class ExportResult:
    out: Path
    manifest: Manifest
    skipped: bool
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def default_validation_data(task: str, labels: tuple[str, ...]) -> str:
    if task == "token-classification":
        return "klue-ner"
    return "nsmc" if set(labels) == {"negative", "positive"} else "kote"


def _kolite_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kolite")
    except PackageNotFoundError:
        return "0+unknown"


def _tool_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import tokenizers
    import torch
    import transformers

    from kolite_export.onnx_export import OPSET

    return {
        "kolite": _kolite_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "tokenizers": tokenizers.__version__,
        "opset": str(OPSET),
    }


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: ExportOptions = ExportOptions(),
    progress: Progress = lambda _: None,
) -> ExportResult:
    """Export ``source`` (folder or hub id) to the artifact folder ``out``; never leaves a half-written ``out``."""
    from kolite_export.variants import VARIANTS

    unknown = [v for v in options.variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    out = Path(out)
    src = resolve_source(source, options.revision)
    fingerprint = fingerprint_folder(src.folder)
    if not options.force:
        reusable = reusable_manifest(out, fingerprint, _kolite_version(), options.variants, _current_recipes())
        if reusable is not None:
            progress(f"{out}: up to date (same source fingerprint, kolite version and hashes); --force to redo")
            return ExportResult(out, reusable, skipped=True)
    return _export(src, fingerprint, out, options, progress)


def _current_recipes() -> dict[str, dict[str, object]]:
    """The quantization recipes an export on this CPU would use now: an artifact made with others is rebuilt."""
    from kolite_export.cpu import detect_cpu
    from kolite_export.recipes import DynamicQuantRecipe, StaticScaleRecipe

    cpu = detect_cpu()
    return {"int8": DynamicQuantRecipe.for_cpu(cpu).to_dict(), "int8-static": StaticScaleRecipe.for_cpu(cpu).to_dict()}


def _export(src: Source, fingerprint: str, out: Path, options: ExportOptions, progress: Progress) -> ExportResult:
    from kolite_export.cpu import detect_cpu
    from kolite_export.layouts import detect_layout
    from kolite_export.onnx_export import export_fp32
    from kolite_export.validation import check_tokenizer_parity, encode_set, reference_outputs
    from kolite_export.variants import VARIANTS, BuildContext

    layout = detect_layout(src.folder)
    progress(f"loading {src.id} ({layout.name})")
    checkpoint = layout.load(src.folder)
    data_spec = options.validation_data or default_validation_data(checkpoint.task, checkpoint.labels)
    data: ValidationSet = load_validation_set(data_spec, options.validation_size, options.shared)
    variants: dict[str, Variant] = {}
    failures: dict[str, str] = {}
    with staging_dir(out) as tmp:
        _save_runtime_tokenizer(checkpoint, tmp / "tokenizer.json")
        parity = check_tokenizer_parity(tmp / "tokenizer.json", checkpoint, data.texts)
        progress(f"tokenizer parity: {parity['texts']} texts, identical ids")
        started = time.perf_counter()
        export_fp32(checkpoint, tmp / "model.fp32.onnx")
        progress(f"fp32 graph traced in {time.perf_counter() - started:.1f}s")
        encoded = encode_set(checkpoint, data.texts, options.batch_size)
        progress(f"PyTorch reference on {len(data.texts)} texts of {data.name}...")
        started = time.perf_counter()
        reference = reference_outputs(checkpoint, encoded)
        progress(f"PyTorch reference done in {time.perf_counter() - started:.0f}s")
        calibration = _calibration_texts(data_spec, options)
        ctx = BuildContext(
            checkpoint, tmp, detect_cpu(), calibration_texts=calibration.texts, calibration_source=calibration.source
        )
        for name in options.variants:
            started = time.perf_counter()
            variants[name] = _build_and_validate(VARIANTS[name], ctx, reference, encoded, data)
            variant = variants[name]
            if not variant.passed:
                failures[name] = variant.validation.get("error", "failed")
            progress(
                f"{name}: {variant.status} ({variant.size_bytes / 1e6:.1f} MB, {time.perf_counter() - started:.1f}s)"
            )
        for scratch in tmp.glob("scratch.*"):
            scratch.unlink()
        if "fp32" not in options.variants:
            (tmp / "model.fp32.onnx").unlink()
        manifest = Manifest(
            name=options.name or out.name,
            task=checkpoint.task,
            labels=checkpoint.labels,
            inputs=checkpoint.inputs,
            max_length=checkpoint.max_length,
            pad_token_id=checkpoint.pad_token_id,
            tokenizer=file_ref(tmp, "tokenizer.json"),
            variants=variants,
            problem_type=checkpoint.problem_type,
            source={**src.to_dict(), "layout": checkpoint.layout, "fingerprint": fingerprint},
            validation={
                "data": data.name,
                "texts": len(data.texts),
                "tokenizer_parity": parity,
                "cpu_family": ctx.cpu.family,
            },
            tools=_tool_versions(),
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return ExportResult(out, manifest, skipped=False, failures=failures)


def _build_and_validate(spec: Any, ctx: Any, reference: list[Any], encoded: Any, data: ValidationSet) -> Variant:
    """Build one variant's graph, run it on CPU over the validation set and apply its gate."""
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, RuntimeException
    from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

    from kolite_export.validation import GATES, evaluate_gate, onnx_outputs

    target = ctx.workdir / spec.file
    recipe = spec.build(ctx, target)
    status = "passed"
    try:
        outputs = onnx_outputs(_session(target), ctx.checkpoint, encoded)
        numbers = evaluate_gate(spec.name, GATES[spec.name], ctx.checkpoint, reference, outputs, data)
        numbers["validated_on"] = "CPUExecutionProvider"
    except ValidationError as exc:
        status, numbers = "failed", {**exc.numbers, "error": str(exc)}
    except (Fail, InvalidGraph, OrtNotImplemented, RuntimeException) as exc:
        # e.g. an fp16 graph whose ops have no CPU kernels: it could not be validated, so it is not served.
        message = str(exc).strip().splitlines()[0]
        status, numbers = "failed", {"validated_on": "none", "error": f"cannot run on CPU to validate: {message}"}
    ref = file_ref(ctx.workdir, spec.file)
    return Variant(
        name=spec.name,
        file=spec.file,
        precision=spec.precision,
        sha256=ref.sha256,
        size_bytes=ref.size_bytes,
        providers=spec.providers,
        status=status,
        validation=numbers,
        recipe=recipe,
    )


def _save_runtime_tokenizer(checkpoint: Any, path: Path) -> None:
    """The HF tokenizer's backend as tokenizer.json, without call-time padding/truncation state."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(checkpoint.tokenizer.backend_tokenizer.to_str())
    tok.no_padding()
    tok.no_truncation()
    tok.save(str(path))


def _calibration_texts(data_spec: str, options: ExportOptions) -> Any:
    """Calibration texts for static int8: the same kind of data, but not the validation texts themselves."""
    from kolite_export.calibration import CalibrationSet, calibration_texts
    from kolite_export.recipes import StaticScaleRecipe

    if "int8-static" not in options.variants:
        return CalibrationSet("", ())
    return calibration_texts(data_spec, options.validation_size, StaticScaleRecipe.calibration_texts, options.shared)
