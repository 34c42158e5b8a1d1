"""``kolite.load``: artifact (folder or hub id) → TextClassifier | TokenClassifier on the device that really runs.

Every artifact file is read the same way, whoever asks (API, CLI, labeller, server): the name must stay inside
the artifact folder (no ``..``, no symlink out), the size must match the manifest and stay under a cap, and the
sha256 must match before onnxruntime or tokenizers see a byte.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolite.batching import pad_batch
from kolite.classification import TextClassifier
from kolite.cpu_features import first_safe_variant, missing_features, unsafe_variant_message
from kolite.errors import IntegrityError, InvalidInputError, KoliteError, ManifestError, UnknownVariantError
from kolite.graph_facts import read_graph_facts
from kolite.guard import DEFAULT_MAX_RERUN_FRACTION, FidelityGuard, GuardRecord
from kolite.integrity import read_verified, safe_member
from kolite.manifest import Manifest, Variant, load_manifest
from kolite.model import DEFAULT_MAX_ITEMS, DEFAULT_MAX_TEXT_CHARS, KoliteModel, check_positive_int
from kolite.normalization import NORMALIZATIONS
from kolite.providers import DeviceSpec, cpu_device, resolve_device
from kolite.session import SPINNING_ENTRY, OnnxModel
from kolite.sources import ArtifactSource, resolve_source
from kolite.token_classification import TokenClassifier
from kolite.tokenization import TextEncoder

__all__ = ["AUTO_PREFERENCE", "MAX_TOKENIZER_BYTES", "TASK_MODELS", "auto_candidates", "load", "select_variant"]

logger = logging.getLogger("kolite")

# Task → model family class (fastembed-style registry; a new task adds one module and one entry).
TASK_MODELS: dict[str, type[KoliteModel]] = {
    "text-classification": TextClassifier,
    "token-classification": TokenClassifier,
}

# What variant="auto" tries, per device, for manifests written before variants carried a rank (schema 1.0).
# Newer manifests rank their variants themselves (export's VariantSpec.rank) and name the providers each runs on.
AUTO_PREFERENCE: dict[str, tuple[str, ...]] = {
    "cpu": ("int8", "int8-static", "fp32-opt", "fp32"),
    "cuda": ("fp16", "fp32-opt", "fp32"),
}
MAX_TOKENIZER_BYTES = 256 * 2**20  # real tokenizer.json files are 1-20 MB
MAX_GRAPH_BYTES = 2**31  # protobuf's limit for one self-contained graph (kolite refuses external data)


def auto_candidates(manifest: Manifest, device: DeviceSpec) -> list[Variant]:
    """The passed variants ``auto`` may pick on ``device``, most preferred first: by the manifest's ranks among the
    variants that run on the device's execution provider, or by the legacy table for unranked (1.0) manifests."""
    passed = manifest.passed_variants
    if passed and all(v.rank is not None for v in passed.values()):
        provider = device.providers[0]
        runnable = [v for v in passed.values() if provider in v.providers]
        return sorted(runnable, key=lambda v: (v.rank, v.name))
    return [passed[name] for name in AUTO_PREFERENCE[device.kind] if name in passed]


def select_variant(manifest: Manifest, variant: str, device: DeviceSpec) -> Variant:
    """The variant to load: the named one, or for ``auto`` the device's first preference that passed validation."""
    if variant == "auto":
        candidates = auto_candidates(manifest, device)
        if candidates:  # the first this CPU runs exactly (an int8 recipe may assume VNNI), loudly
            return first_safe_variant(manifest.name, candidates, _warn)
        raise UnknownVariantError(
            f"{manifest.name}: no variant that passed validation suits device {device.kind!r} (artifact has "
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
    max_text_chars: int | None = DEFAULT_MAX_TEXT_CHARS,
    verify: bool = True,
    normalization: str | None = None,
    max_length: int | None = None,
    parallel: int | None = None,
    guard: bool | None = None,
) -> TextClassifier | TokenClassifier:
    """Load an exported kolite artifact.

    - ``variant``: ``auto`` (the best-ranked variant that passed validation and runs on the device, and whose int8
      recipe this CPU runs exactly; ``kolite info`` shows the choice) or a variant name from the manifest (a
      failed variant loads only when named).
    - ``device``: ``cpu``, ``cuda`` / ``cuda:N`` (raises ProviderUnavailableError without CUDAExecutionProvider),
      ``auto`` (CUDA if available, else CPU with a loud warning). The session decides: if CUDA cannot start, the
      variant and session options are chosen again for the CPU that actually runs.
    - ``threads``: intra-op threads (default: the CPU budget); ``session_options``: an ``onnxruntime.SessionOptions``
      or a mapping of its attributes overriding kolite's defaults.
    - ``verify``: check sha256 of tokenizer.json and the variant's .onnx before anything reads them.
    - ``normalization``: ``NFC`` or ``none``; default: the manifest's (NFC).
    - ``parallel``: throughput mode. A call whose texts fill several batches runs them side by side on this many
      one-thread sessions (default: one per thread of the main session, on CPU; 0 or 1: off); a single batch
      (batch-1 latency) runs on the main session's threads, or on the first one-thread session when it is small
      enough to run faster there (``kolite.session.ONE_THREAD_MAX_MACS``).
    - ``max_text_chars``: texts that are windowed, never cut (NER, ``long_text="windows"``), over this many
      characters are refused with an ``InvalidInputError`` (their cost grows with their length); ``None`` lifts
      the cap. Truncated texts are cut before tokenizing and are not limited.
    - ``max_length``: a shorter window than the manifest's (e.g. 128, what many Korean fine-tunes were trained
      with): texts are truncated, or windowed, at that many tokens.
    - ``guard``: the fidelity guard (``kolite.guard``) of an int8 variant: rows whose int8 decision margin is below
      the τ export measured are re-run in the float graph, so their answers are the float graph's. ``True``: on
      (an int8 variant without a recorded τ is an error); ``False``: off; ``None`` (default): on when export
      measured that it re-runs at most 5 % of rows. It loads the float graph too (more memory). Float variants
      need no guard.
    """
    if not isinstance(variant, str):
        raise UnknownVariantError(f"variant must be a string, got {type(variant).__name__}")
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise UnknownVariantError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}")
    if max_text_chars is not None:
        check_positive_int("max_text_chars", max_text_chars)
    spec = resolve_device(device)
    source = resolve_source(path_or_hub_id, revision=revision)
    manifest = load_manifest(source.directory)
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, int) or not 8 <= max_length <= manifest.max_length
    ):
        raise InvalidInputError(
            f"max_length must be an int in [8, {manifest.max_length}] for this model, got {max_length!r}"
        )
    encoder = TextEncoder(
        _read_tokenizer(source, manifest, verify),
        max_length or manifest.max_length,
        manifest.truncation_side,
        normalization or manifest.normalization,
    )
    if guard is not None and not isinstance(guard, bool):
        raise InvalidInputError(f"guard must be True, False or None (auto), got {guard!r}")
    settings = _SessionSettings(threads, session_options, verify, parallel)
    chosen, session = _open_session(source, manifest, variant, spec, settings, device)
    fidelity_guard = None
    try:
        _check_graph(source, manifest, chosen)
        _check_outputs(session, manifest, chosen, encoder)
        fidelity_guard = _guard(source, manifest, chosen, session, settings, guard)
        if fidelity_guard is not None:
            _check_outputs(fidelity_guard.session, manifest, manifest.variants[fidelity_guard.record.float_variant],
                           encoder)
    except BaseException:
        session.close()
        if fidelity_guard is not None:
            fidelity_guard.close()
        raise
    return TASK_MODELS[manifest.task](
        manifest,
        chosen,
        session,
        encoder,
        max_items=max_items,
        max_text_chars=max_text_chars,
        source=str(path_or_hub_id),
        artifact_dir=source.directory,
        guard=fidelity_guard,
    )


def guard_wanted(manifest: Manifest, chosen: Variant, guard: bool | None) -> GuardRecord | None:
    """The guard record to apply for ``guard`` (True / False / None = auto) on ``chosen``, or None for no guard."""
    if guard is False or chosen.precision != "int8":
        return None  # float variants are their own answers
    record = GuardRecord.from_manifest(chosen.guard)
    if record is None:
        if guard:
            raise KoliteError(
                f"{manifest.name}: variant {chosen.name!r} records no fidelity guard threshold (exported before "
                "kolite measured one); re-export the artifact, or load with guard=False"
            )
        return None
    float_variant = manifest.variants.get(record.float_variant)
    if float_variant is None or not float_variant.passed:
        raise ManifestError(
            f"{manifest.name}: the guard of {chosen.name!r} re-runs in {record.float_variant!r}, which the artifact "
            "does not hold as a passed variant"
        )
    if guard is None and (record.rerun_fraction is None or record.rerun_fraction > DEFAULT_MAX_RERUN_FRACTION):
        return None
    return record


def _guard(
    source: ArtifactSource,
    manifest: Manifest,
    chosen: Variant,
    session: OnnxModel,
    settings: _SessionSettings,
    guard: bool | None,
) -> FidelityGuard | None:
    record = guard_wanted(manifest, chosen, guard)
    if record is None:
        return None
    # One session of the float graph, on the int8 session's threads: it runs only the uncertain rows, a few per
    # call. Its idle threads sleep instead of spinning (unless the caller set session options): a pool left spinning
    # after each short re-run took a core from the int8 pass of the next call (file-order batches ran at ~0.7x of
    # unguarded; docs/guides/fidelity.md).
    float_settings = _SessionSettings(settings.threads, _sleeping_threads(settings.session_options), settings.verify, 0)
    float_session = _session(source, manifest.variants[record.float_variant], session.device, float_settings, True)
    multi_label = manifest.problem_type == "multi_label_classification"
    return FidelityGuard(record, float_session, multi_label)


def _sleeping_threads(session_options: Any) -> Any:
    """``session_options`` with idle intra-op threads sleeping; an ``onnxruntime.SessionOptions`` object or an
    explicit ``allow_spinning`` entry is the caller's decision and is kept as is."""
    if session_options is None:
        return {SPINNING_ENTRY: "0"}
    if isinstance(session_options, Mapping):
        return {SPINNING_ENTRY: "0", **session_options}
    return session_options


def _read_tokenizer(source: ArtifactSource, manifest: Manifest, verify: bool) -> str:
    ref = manifest.tokenizer
    path = safe_member(source.directory, ref.file)
    data = read_verified(path, ref.sha256 if verify else None, ref.size_bytes, MAX_TOKENIZER_BYTES)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path} is not UTF-8 JSON: {exc}") from exc


@dataclass(frozen=True)
class _SessionSettings:
    threads: int | None
    session_options: Any
    verify: bool
    parallel: int | None


def _open_session(
    source: ArtifactSource, manifest: Manifest, variant: str, spec: DeviceSpec, settings: _SessionSettings, device: str
) -> tuple[Variant, OnnxModel]:
    """Create the session first, then trust what it runs on: when CUDA could not start (``device="auto"``), the
    variant and options are chosen again for the CPU instead of running a GPU choice there."""
    chosen = select_variant(manifest, variant, spec)
    session = _session(source, chosen, spec, settings, strict=device != "auto")
    if session.device.kind == spec.kind:
        return chosen, session
    session.close()
    cpu = cpu_device()
    chosen = select_variant(manifest, variant, cpu)
    return chosen, _session(source, chosen, cpu, settings, strict=True)


def _session(
    source: ArtifactSource, chosen: Variant, spec: DeviceSpec, settings: _SessionSettings, strict: bool
) -> OnnxModel:
    model_path = safe_member(source.directory, chosen.file)
    source.ensure(chosen.file)
    sha256, size = (chosen.sha256, chosen.size_bytes) if settings.verify else (None, None)

    def read_graph() -> bytes:  # one read: the hashed bytes are the bytes onnxruntime runs
        return read_verified(model_path, sha256, size, MAX_GRAPH_BYTES)

    options = settings.session_options
    options = dict(options) if isinstance(options, Mapping) else options
    return OnnxModel(
        model_path, spec, "logits", settings.threads, options, strict, settings.parallel, read_graph=read_graph
    )


def _check_graph(source: ArtifactSource, manifest: Manifest, chosen: Variant) -> None:
    """What the manifest says must fit the graph it names: ``max_length`` within the position table (recorded by
    export as ``max_positions``, else read from the graph), external data inside the artifact folder."""
    path = safe_member(source.directory, chosen.file)
    try:
        facts = read_graph_facts(path)
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{path}: {exc}") from exc
    for location in facts.external_files:
        try:
            safe_member(path.parent, location)
        except ManifestError:
            raise IntegrityError(f"{chosen.file} keeps external data in {location!r}, outside the artifact folder: "
                                 "refused (a graph may only read files of its own artifact)") from None
    rows = facts.position_rows
    if rows is not None and manifest.max_positions is not None and rows != manifest.max_positions:
        raise ManifestError(f"{chosen.file} has a position table of {rows} rows, the manifest records "
                            f"max_positions={manifest.max_positions}: the manifest does not belong to this graph")
    if rows is not None and manifest.max_length > rows:
        raise ManifestError(f"max_length {manifest.max_length} is over the {rows} positions of {chosen.file}'s "
                            "position table: texts that long would fail inside onnxruntime; fix max_length")


def _check_outputs(session: OnnxModel, manifest: Manifest, chosen: Variant, encoder: TextEncoder) -> None:
    """The graph must give one logit per label, per text (classification) or per token (NER)."""
    per_token = manifest.task == "token-classification"
    shape = list(session.output_shape)
    expected_rank = 3 if per_token else 2
    width = shape[-1] if shape else None
    if len(shape) == expected_rank and not isinstance(width, int):  # a symbolic width: ask the graph itself
        probe = encoder.encode([""]).sequences
        width = shape[-1] = int(session.run(pad_batch(probe, manifest.pad_token_id)).shape[-1])
    if len(shape) != expected_rank or (isinstance(width, int) and width != len(manifest.labels)):
        unit = "token" if per_token else "text"
        raise ManifestError(
            f"{Path(chosen.file).name} outputs logits of shape {shape}, but the manifest's task {manifest.task} "
            f"with {len(manifest.labels)} labels needs [batch{', sequence' if per_token else ''}, "
            f"{len(manifest.labels)}] (one logit per label per {unit}); the manifest does not belong to this graph"
        )
