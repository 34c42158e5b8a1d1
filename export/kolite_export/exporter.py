"""Checkpoint → validated ONNX artifact: the one orchestration function behind ``kolite export``."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kolite.graph_facts import read_graph_facts
from kolite.manifest import Manifest, Variant

from kolite_export.artifact import file_ref, reusable_manifest, staging_dir
from kolite_export.gates import DEFAULT_VALIDATION_SIZES
from kolite_export.sources import Source, fingerprint_folder, resolve_source
from kolite_export.validation_data import ValidationSet, load_validation_set

__all__ = ["ExportOptions", "ExportResult", "default_validation_data", "export"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportOptions:
    variants: tuple[str, ...] | None = None  # None: the registry's default variants
    validation_data: str | None = None  # None: chosen from the task and labels
    validation_size: int | None = None  # None: per task (gates.DEFAULT_VALIDATION_SIZES); 0: the whole set
    revision: str | None = None
    force: bool = False
    name: str | None = None
    shared: str | None = None
    batch_size: int = 64
    repair: bool = True  # keep the most sensitive nodes of a failing int8 variant in float until it passes
    max_float_fraction: float = 0.25  # repair gives up beyond this share of the quantizable weights in float
    guard_texts: int | None = None  # held-out texts τ of the fidelity guard is measured on (None: per task)

    @classmethod
    def from_args(cls, args: argparse.Namespace, **overrides: Any) -> ExportOptions:
        """The options of ``kolite export``'s arguments (``overrides`` win, e.g. a seed's name and data set)."""
        fields: dict[str, Any] = {
            "variants": args.variants,
            "validation_data": args.validation_data,
            "validation_size": args.validation_size,
            "revision": args.revision,
            "force": args.force,
            "name": args.name,
            "shared": args.shared,
            "repair": not args.no_repair,
        }
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**fields)

    @property
    def variant_names(self) -> tuple[str, ...]:
        from kolite_export.variants import default_variants

        return self.variants or default_variants()

    def sample_size(self, task: str) -> int | None:
        """Validation texts to take (None = the whole set)."""
        if self.validation_size is None:
            return DEFAULT_VALIDATION_SIZES[task]
        return self.validation_size or None


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


def export(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: ExportOptions = ExportOptions(),
    progress: Progress = lambda _: None,
) -> ExportResult:
    """Export ``source`` (folder or hub id) to the artifact folder ``out``; never leaves a half-written ``out``."""
    from kolite_export.variants import VARIANTS

    unknown = [v for v in options.variant_names if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    out = Path(out)
    src = resolve_source(source, options.revision)
    fingerprint = fingerprint_folder(src.folder)
    if not options.force:
        reusable = reusable_manifest(
            out, fingerprint, _kolite_version(), options.variant_names, _current_recipes(), _validation_request(options)
        )
        if reusable is not None:
            progress(f"{out}: up to date (same source fingerprint, kolite version and hashes); --force to redo")
            return ExportResult(out, reusable, skipped=True)
    return _export(src, fingerprint, out, options, progress)


def _current_recipes() -> dict[str, dict[str, object]]:
    """The recipes an export on this CPU would use now: an artifact made with others is rebuilt."""
    from kolite_export.cpu import detect_cpu
    from kolite_export.variants import VARIANTS

    cpu = detect_cpu()
    return {name: spec.current_recipe(cpu) for name, spec in VARIANTS.items() if spec.current_recipe is not None}


def _validation_request(options: ExportOptions) -> dict[str, Any]:
    """What the caller asked to validate on (recorded, so a re-export asking for other texts is not skipped)."""
    return {"data": options.validation_data, "size": options.validation_size}


def _export(src: Source, fingerprint: str, out: Path, options: ExportOptions, progress: Progress) -> ExportResult:
    from kolite_export.cpu import detect_cpu
    from kolite_export.layouts import detect_layout
    from kolite_export.onnx_export import export_fp32
    from kolite_export.trial import Validator
    from kolite_export.validation import check_tokenizer_parity, encode_set, reference_outputs, runtime_sequences
    from kolite_export.variants import BuildContext

    layout = detect_layout(src.folder)
    progress(f"loading {src.id} ({layout.name})")
    checkpoint = layout.load(src.folder)
    data_spec = options.validation_data or default_validation_data(checkpoint.task, checkpoint.labels)
    data: ValidationSet = load_validation_set(data_spec, options.sample_size(checkpoint.task), options.shared)
    with staging_dir(out) as tmp:
        _save_runtime_tokenizer(checkpoint, tmp / "tokenizer.json")
        parity = check_tokenizer_parity(tmp / "tokenizer.json", checkpoint, data.texts)
        progress(f"tokenizer parity: {parity['texts']} texts, identical ids")
        started = time.perf_counter()
        export_fp32(checkpoint, tmp / "model.fp32.onnx")
        # The runtime checks max_length against the same table, read by the same reader.
        max_positions = read_graph_facts(tmp / "model.fp32.onnx").position_rows
        progress(f"fp32 graph traced in {time.perf_counter() - started:.1f}s")
        encoded = encode_set(checkpoint, data.texts, options.batch_size)
        progress(f"PyTorch reference on {len(data.texts)} texts of {data.name}...")
        started = time.perf_counter()
        reference = reference_outputs(checkpoint, encoded)
        progress(f"PyTorch reference done in {time.perf_counter() - started:.0f}s")
        calibration = _calibration(data_spec, data, options)
        ctx = BuildContext(
            checkpoint, tmp, detect_cpu(), calibration_texts=calibration.texts, calibration_source=calibration.source
        )
        sequences = runtime_sequences(tmp / "tokenizer.json", checkpoint.max_length, data.texts)
        validator = Validator(ctx, reference, encoded, data, sequences)
        variants, failures = _build_variants(validator, options, progress)
        variants = _measure_guards(variants, tmp, checkpoint, data_spec, data, calibration, options, progress)
        for scratch in tmp.glob("scratch.*"):
            scratch.unlink()
        if "fp32" not in variants:
            (tmp / "model.fp32.onnx").unlink()
        manifest = Manifest(
            name=options.name or out.name,
            task=checkpoint.task,
            labels=checkpoint.labels,
            inputs=checkpoint.inputs,
            max_length=checkpoint.max_length,
            max_positions=max_positions,
            pad_token_id=checkpoint.pad_token_id,
            tokenizer=file_ref(tmp, "tokenizer.json"),
            variants=variants,
            problem_type=checkpoint.problem_type,
            source={**src.to_dict(), "layout": checkpoint.layout, "fingerprint": fingerprint},
            validation={
                "data": data.name,
                "texts": len(data.texts),
                "request": _validation_request(options),
                "tokenizer_parity": parity,
                "cpu_family": ctx.cpu.family,
            },
            tools=_tool_versions(),
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return ExportResult(out, manifest, skipped=False, failures=failures)


def _build_variants(
    validator: Any, options: ExportOptions, progress: Progress
) -> tuple[dict[str, Variant], dict[str, str]]:
    """Build and gate every requested variant; an int8 variant that misses its gate goes through accuracy repair,
    and one that passes keeps its task's error-float nodes (``error_ranking``: they shrink the guard's τ)."""
    from kolite_export.error_ranking import with_error_float
    from kolite_export.repair import repair
    from kolite_export.variants import VARIANTS

    variants: dict[str, Variant] = {}
    failures: dict[str, str] = {}
    for name in options.variant_names:
        spec = VARIANTS[name]
        started = time.perf_counter()
        trial = validator.trial(spec)
        if trial.failed_gate and spec.repairable and options.repair:
            progress(f"{name}: {trial.variant.validation.get('error')}; repairing")
            trial = repair(validator, spec, trial, options.max_float_fraction, progress)
        if trial.variant.passed and spec.error_float_budget is not None:
            budget = spec.error_float_budget.get(validator.ctx.checkpoint.task, 0.0)
            trial = with_error_float(validator, spec, trial, budget, progress)
        variant = variants[name] = trial.variant
        if not variant.passed:
            failures[name] = variant.validation.get("error", "failed")
        progress(f"{name}: {variant.status} ({variant.size_bytes / 1e6:.1f} MB, {time.perf_counter() - started:.1f}s)")
    return variants, failures


def _measure_guards(
    variants: dict[str, Variant],
    tmp: Path,
    checkpoint: Any,
    data_spec: str,
    data: ValidationSet,
    calibration: Any,
    options: ExportOptions,
    progress: Progress,
) -> dict[str, Variant]:
    """τ of the fidelity guard for every passed int8 variant, on held-out texts (``guard_threshold``)."""
    from kolite_export.guard_threshold import DEFAULT_GUARD_TEXTS, guard_texts, with_guards

    if not any(v.precision == "int8" and v.passed for v in variants.values()):
        return variants
    count = options.guard_texts if options.guard_texts is not None else DEFAULT_GUARD_TEXTS[checkpoint.task]
    source, texts = guard_texts(data_spec, data, calibration, count, options.shared)
    started = time.perf_counter()
    multi_label = checkpoint.problem_type == "multi_label_classification"
    guarded = with_guards(
        variants, tmp, tmp / "tokenizer.json", checkpoint.max_length, checkpoint.pad_token_id, multi_label, texts,
        source,
    )
    for name, variant in guarded.items():
        if variant.guard:
            progress(
                f"{name}: guard tau {variant.guard['tau']:.4f}, re-runs {variant.guard['rerun_fraction']:.2%} of "
                f"{len(texts)} held-out texts ({time.perf_counter() - started:.0f}s)"
            )
    return guarded


def _save_runtime_tokenizer(checkpoint: Any, path: Path) -> None:
    """The HF tokenizer's backend as tokenizer.json, without call-time padding/truncation state."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(checkpoint.tokenizer.backend_tokenizer.to_str())
    tok.no_padding()
    tok.no_truncation()
    tok.save(str(path))


def _calibration(data_spec: str, data: ValidationSet, options: ExportOptions) -> Any:
    """Calibration texts for the variants that calibrate (static int8): the same kind of data, never the
    validation texts themselves."""
    from kolite_export.calibration import CalibrationSet, calibration_texts
    from kolite_export.variants import VARIANTS

    count = max(VARIANTS[name].calibration_texts for name in options.variant_names)
    if not count:
        return CalibrationSet("", ())
    return calibration_texts(data_spec, data, count, options.shared)
