"""``kolite.load``: artifact (folder or hub id) → TextClassifier | TokenClassifier on the chosen device."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

from kolite.classification import TextClassifier
from kolite.cpu_features import first_safe_variant, missing_features, unsafe_variant_message
from kolite.errors import UnknownVariantError
from kolite.integrity import safe_member, verify_file
from kolite.manifest import Manifest, Variant, load_manifest
from kolite.model import DEFAULT_MAX_ITEMS, KoliteModel
from kolite.providers import DeviceSpec, resolve_device
from kolite.session import OnnxModel
from kolite.sources import resolve_source
from kolite.token_classification import TokenClassifier
from kolite.tokenization import TextEncoder

__all__ = ["AUTO_PREFERENCE", "TASK_MODELS", "load", "select_variant"]

logger = logging.getLogger("kolite")

# Task → model family class (fastembed-style registry; a new task adds one module and one entry).
TASK_MODELS: dict[str, type[KoliteModel]] = {
    "text-classification": TextClassifier,
    "token-classification": TokenClassifier,
}

# What variant="auto" tries, in order, per device. int8 (dynamic) has ConvInteger/MatMulInteger ops the CUDA EP
# does not run, so CUDA starts at fp16.
AUTO_PREFERENCE: dict[str, tuple[str, ...]] = {
    "cpu": ("int8", "int8-static", "fp32-opt", "fp32"),
    "cuda": ("fp16", "fp32-opt", "fp32"),
}


def select_variant(manifest: Manifest, variant: str, device: DeviceSpec) -> Variant:
    """The variant to load: the named one, or for ``auto`` the device's first preference that passed validation."""
    if variant == "auto":
        passed = [manifest.variants[n] for n in AUTO_PREFERENCE[device.kind] if n in manifest.passed_variants]
        if passed:  # the first this CPU runs exactly (an int8 recipe may assume VNNI), loudly
            return first_safe_variant(manifest.name, passed, _warn)
        raise UnknownVariantError(
            f"{manifest.name}: no variant that passed validation suits device {device.kind!r} "
            f"(tried {', '.join(AUTO_PREFERENCE[device.kind])}; artifact has "
            f"{', '.join(f'{n} ({v.status})' for n, v in manifest.variants.items())}); name one explicitly"
        )
    if variant not in manifest.variants:
        raise UnknownVariantError(
            f"{manifest.name} has no variant {variant!r}; valid: auto, {', '.join(manifest.variants)}"
        )
    chosen = manifest.variants[variant]
    if not chosen.passed:
        _warn(
            f"{manifest.name}: variant {variant!r} FAILED validation ({chosen.validation}); loading it only because "
            "it was named explicitly"
        )
    missing = missing_features(chosen)
    if missing:
        _warn(unsafe_variant_message(manifest.name, chosen, missing) + "; loading it only because it was named")
    if device.is_cuda and chosen.precision == "int8":
        _warn(
            f"{manifest.name}: int8 variant {variant!r} on CUDA: its integer ops have no CUDA kernels and run on "
            "the CPU; use variant='fp16' or 'fp32' on GPUs"
        )
    return chosen


def _warn(message: str) -> None:
    logger.warning("kolite: %s", message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def load(
    path_or_hub_id: str | os.PathLike[str],
    variant: str = "auto",
    device: str = "cpu",
    threads: int | None = None,
    session_options: Any = None,
    *,
    revision: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
    verify: bool = True,
) -> TextClassifier | TokenClassifier:
    """Load an exported kolite artifact.

    - ``variant``: ``auto`` (CPU: int8 → int8-static → fp32-opt → fp32; CUDA: fp16 → fp32-opt → fp32, first that
      passed validation) or a variant name from the manifest (a failed variant loads only when named).
    - ``device``: ``cpu``, ``cuda`` / ``cuda:N`` (raises ProviderUnavailableError without CUDAExecutionProvider),
      ``auto`` (CUDA if available, else CPU with a loud warning).
    - ``threads``: intra-op threads (default: physical cores); ``session_options``: an ``onnxruntime.SessionOptions``
      or a mapping of its attributes overriding kolite's defaults.
    - ``verify``: check sha256 of tokenizer.json and the variant's .onnx before anything reads them.
    """
    if not isinstance(variant, str):
        raise UnknownVariantError(f"variant must be a string, got {type(variant).__name__}")
    spec = resolve_device(device)
    source = resolve_source(path_or_hub_id, revision=revision)
    manifest = load_manifest(source.directory)
    chosen = select_variant(manifest, variant, spec)
    tokenizer_path = safe_member(source.directory, manifest.tokenizer.file)
    model_path = safe_member(source.directory, chosen.file)
    source.ensure(chosen.file)
    if verify:
        verify_file(tokenizer_path, manifest.tokenizer.sha256, manifest.tokenizer.size_bytes)
        verify_file(model_path, chosen.sha256, chosen.size_bytes)
    encoder = TextEncoder(tokenizer_path, manifest.max_length, manifest.truncation_side)
    session = OnnxModel(
        model_path, spec, manifest.output, threads, _copy_options(session_options), strict_device=device != "auto"
    )
    model_class = TASK_MODELS[manifest.task]
    return model_class(
        manifest,
        chosen,
        session,
        encoder,
        max_items=max_items,
        source=str(path_or_hub_id),
        artifact_dir=source.directory,
    )


def _copy_options(options: Any) -> Any:
    return dict(options) if isinstance(options, Mapping) else options
