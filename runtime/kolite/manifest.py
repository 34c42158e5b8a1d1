"""The artifact manifest: the one contract between ``kolite_export`` (writer) and the runtime (reader).

An artifact is a folder::

    manifest.json        this schema
    tokenizer.json       a `tokenizers` fast tokenizer (the runtime never needs transformers)
    model.fp32.onnx      one file per variant, named in ``variants``
    model.int8.onnx ...

The schema is versioned; the runtime reads any manifest of its major version (fields a newer minor version adds
are ignored) and refuses another major version. 1.1 added per variant ``rank`` (auto preference) and
``cpu_features`` (what an int8 recipe assumes of the serving CPU); a 1.0 manifest loads with neither. 1.2 added
``max_positions`` (rows of the graph's position table; without it the runtime reads the graph itself) and, per int8
variant, ``guard`` (the fidelity guard's τ, its float variant and how τ was measured; ``kolite.guard``).

The parse is strict: a key given twice, NaN/Infinity, or a number outside its range is a ManifestError naming it,
never a silent last-one-wins, an OverflowError or a crash inside onnxruntime.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from kolite.errors import ManifestError
from kolite.normalization import NORMALIZATIONS

__all__ = [
    "MANIFEST_FILE",
    "PRECISIONS",
    "SCHEMA_VERSION",
    "TASKS",
    "FileRef",
    "Manifest",
    "Variant",
    "load_manifest",
]

SCHEMA_VERSION = "1.2"
MANIFEST_FILE = "manifest.json"
MAX_MANIFEST_BYTES = 4 * 2**20  # a real manifest is a few KB; refuse to parse anything huge
TASKS = ("text-classification", "token-classification")
# What the runtime knows how to run (export validates every variant's precision against it).
PRECISIONS = ("fp32", "fp16", "int8")
VARIANT_STATUSES = ("passed", "failed")
# Bounds of the numbers a manifest holds. Positions: the longest position tables in use are 8k-32k rows; a limit far
# above that only makes tokenizers and onnxruntime fail later, with worse errors.
MIN_MAX_LENGTH = 8
MAX_POSITIONS = 1 << 20
MAX_FILE_BYTES = 1 << 40  # 1 TiB: no artifact file comes near it
MAX_TOKEN_ID = (1 << 31) - 1  # onnxruntime's int64 ids, but vocabularies stay far below int32
MAX_RANK = 1 << 16


@dataclass(frozen=True)
class FileRef:
    """A file inside the artifact folder with its integrity data."""

    file: str  # path relative to the artifact folder; must resolve inside it
    sha256: str  # checked before the file is used
    size_bytes: int  # checked first, so a huge or truncated file is refused before hashing


@dataclass(frozen=True)
class Variant:
    """One ONNX graph of the model (fp32, optimized fp32, int8 dynamic, int8 static QDQ, fp16)."""

    name: str  # the key in Manifest.variants, e.g. "int8-static"
    file: str  # the ONNX graph, relative to the artifact folder
    precision: str  # one of PRECISIONS: what the runtime knows a provider can run
    sha256: str  # of the graph file, checked before a session is created
    size_bytes: int
    providers: tuple[str, ...] = ("CPUExecutionProvider",)  # execution providers the graph is meant for
    status: str = "passed"  # "failed": missed its export gate; loaded only when named, with a warning
    # Gate numbers against the PyTorch original, e.g. max_abs_logit_diff, label_agreement, delta_accuracy.
    validation: dict[str, Any] = field(default_factory=dict)
    # How the graph was produced (optimizer level, fusions, quantization recipe...).
    recipe: dict[str, Any] = field(default_factory=dict)
    # Auto-selection preference (lower first) among the variants whose providers include the device's; None: the
    # variant is loaded only when named (and manifests before 1.1, where the runtime's own order applies).
    rank: int | None = None
    # CPU features (kolite.cpu_features names) the graph's int8 kernels assume, e.g. ("vnni",) for full-range int8.
    cpu_features: tuple[str, ...] = ()
    # Fidelity guard (int8 variants): tau, float_variant, rerun_fraction and the method export measured them with;
    # empty: no guard (kolite.guard.GuardRecord reads it).
    guard: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class Manifest:
    """Everything the runtime needs to serve an exported model."""

    name: str  # the model's name (the server names a model after its folder instead)
    task: str  # one of TASKS; picks TextClassifier or TokenClassifier
    labels: tuple[str, ...]  # one per logit, in logit order
    inputs: tuple[str, ...]  # graph inputs; token_type_ids only where the graph has it
    max_length: int  # longest sequence in tokens, special tokens included
    pad_token_id: int  # pads the batch to its longest sequence
    tokenizer: FileRef  # tokenizer.json, read with `tokenizers` (no transformers at run time)
    variants: dict[str, Variant]  # name → variant
    output: str = "logits"  # the graph output the runtime reads
    truncation_side: str = "right"  # which end a too-long text loses, as the original tokenizer did
    # "single_label_classification" (softmax) or "multi_label_classification" (sigmoid).
    problem_type: str = "single_label_classification"
    # Unicode normalisation applied to every text before tokenizing (kolite.normalization): "NFC" or "none".
    # Manifests written before it existed get NFC too: decomposed Hangul must never reach the tokenizer.
    normalization: str = "NFC"
    # Rows of the graph's position-embedding table (kolite.graph_facts): max_length may not exceed it. None: not
    # recorded (manifests before 1.2, graphs without a table); the runtime then reads the graph at load.
    max_positions: int | None = None
    source: dict[str, Any] = field(default_factory=dict)  # id, revision, layout and fingerprint of the checkpoint
    validation: dict[str, Any] = field(default_factory=dict)  # the texts the gates used (data set, count)
    tools: dict[str, str] = field(default_factory=dict)  # versions of kolite, torch, onnx, onnxruntime... at export
    created_at: str = ""  # UTC, ISO 8601
    schema_version: str = SCHEMA_VERSION  # a reader refuses another major version, ignores newer minor fields

    def __post_init__(self) -> None:
        problems = []
        if self.task not in TASKS:
            problems.append(f"task {self.task!r} is not one of {TASKS}")
        if not self.labels:
            problems.append("labels is empty")
        elif not all(isinstance(label, str) and label for label in self.labels):
            problems.append("labels must be non-empty strings")
        elif len(set(self.labels)) != len(self.labels):
            problems.append("labels must be unique")
        problems += _out_of_range("max_length", self.max_length, MIN_MAX_LENGTH, MAX_POSITIONS)
        problems += _out_of_range("pad_token_id", self.pad_token_id, 0, MAX_TOKEN_ID)
        if self.max_positions is not None:
            problems += _out_of_range("max_positions", self.max_positions, MIN_MAX_LENGTH, MAX_POSITIONS)
            if not problems and self.max_length > self.max_positions:
                problems.append(f"max_length {self.max_length} is over the graph's {self.max_positions} positions")
        if not all(isinstance(name, str) for name in self.inputs):
            problems.append("inputs must be strings")
        elif "input_ids" not in self.inputs or "attention_mask" not in self.inputs:
            problems.append(f"inputs {self.inputs} must hold input_ids and attention_mask")
        problems += _file_problems("tokenizer", self.tokenizer)
        if self.normalization not in NORMALIZATIONS:
            problems.append(f"normalization {self.normalization!r} is not one of {NORMALIZATIONS}")
        if self.truncation_side not in ("right", "left"):
            problems.append(f"truncation_side {self.truncation_side!r} is not 'right' or 'left'")
        if not self.variants:
            problems.append("no variants")
        for name, variant in self.variants.items():
            if name != variant.name:
                problems.append(f"variant key {name!r} != its name {variant.name!r}")
            if variant.precision not in PRECISIONS:
                problems.append(f"variant {name!r} has unknown precision {variant.precision!r}")
            if variant.status not in VARIANT_STATUSES:
                problems.append(f"variant {name!r} has unknown status {variant.status!r}")
            problems += _file_problems(f"variant {name!r}", variant)
            if variant.rank is not None:
                problems += _out_of_range(f"variant {name!r} rank", variant.rank, -MAX_RANK, MAX_RANK)
        if problems:
            raise ManifestError("invalid manifest: " + "; ".join(problems))

    @property
    def passed_variants(self) -> dict[str, Variant]:
        return {name: v for name, v in self.variants.items() if v.passed}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["inputs"] = list(self.inputs)
        for variant in data["variants"].values():
            variant["providers"] = list(variant["providers"])
            variant["cpu_features"] = list(variant["cpu_features"])
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        try:
            version = str(data.get("schema_version", ""))
            if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
                raise ManifestError(
                    f"manifest schema_version {version!r} is not supported (this kolite reads {SCHEMA_VERSION}); "
                    "re-export the model with a matching kolite version"
                )
            for key in ("labels", "inputs"):
                if not isinstance(data[key], list):
                    raise ManifestError(f"invalid manifest: {key} must be a list, got {type(data[key]).__name__}")
            variants = {name: _variant_from_dict(v) for name, v in data["variants"].items()}
            top = {k: v for k, v in _known(cls, data).items() if k not in ("variants", "tokenizer", "labels", "inputs")}
            return cls(
                **top,
                labels=tuple(data["labels"]),
                inputs=tuple(data["inputs"]),
                tokenizer=FileRef(**data["tokenizer"]),
                variants=variants,
            )
        except ManifestError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ManifestError(f"manifest does not follow schema {SCHEMA_VERSION}: {exc!r}") from exc


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that are fields of ``cls``: a newer 1.x writer may add fields this reader ignores."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _variant_from_dict(data: dict[str, Any]) -> Variant:
    return Variant(
        **{
            **_known(Variant, data),
            "providers": tuple(data.get("providers", ("CPUExecutionProvider",))),
            "cpu_features": tuple(data.get("cpu_features", ())),
        }
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _out_of_range(what: str, value: Any, low: int, high: int) -> list[str]:
    if not _is_int(value):
        return [f"{what} must be an integer, got {value!r:.40}"]
    if not low <= value <= high:
        return [f"{what} {value!r:.40} is outside [{low}, {high}]"]
    return []


def _file_problems(what: str, ref: FileRef | Variant) -> list[str]:
    problems = _out_of_range(f"{what} size_bytes", ref.size_bytes, 0, MAX_FILE_BYTES)
    if not isinstance(ref.file, str) or not ref.file:
        problems.append(f"{what} file must be a non-empty string")
    if not isinstance(ref.sha256, str) or len(ref.sha256) != 64 or not _is_hex(ref.sha256):
        problems.append(f"{what} sha256 must be 64 hex digits")
    return problems


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key given twice is refused (Python's json keeps the last one silently)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ManifestError(f"key {key!r} appears twice in one JSON object: which one is meant is unclear")
        data[key] = value
    return data


def _no_constant(name: str) -> Any:
    raise ManifestError(f"{name} is not a number a manifest may hold")


def load_manifest(artifact_dir: str | Path) -> Manifest:
    """Read and validate ``manifest.json`` from an artifact folder."""
    path = Path(artifact_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(f"{path} not found: {artifact_dir} is not a kolite artifact (run `kolite export` first)")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path} is {path.stat().st_size} bytes, over {MAX_MANIFEST_BYTES}: not a kolite manifest")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_no_constant)
    except ManifestError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8 or JSON, an int of 5,000 digits
        raise ManifestError(f"{path} is not readable JSON: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path} must hold a JSON object")
    return Manifest.from_dict(data)
