"""``VariantSpec``: everything kolite knows about one variant, in one place, and the registry that holds them.

A variant is one module under ``kolite_export/variants/`` that calls ``register(VariantSpec(...))`` once. The
exporter, the gates, the "is this artifact current" check, ``kolite export --help`` and the benchmark's kolite
contenders all read this registry; the runtime learns what it needs (precision, providers, auto rank, CPU features)
from the manifest, never from here.

Builder contract: ``build(ctx, target, exclude_nodes=()) -> recipe``. It writes the graph to ``target`` and returns
the recipe recorded in the manifest. A quantizing builder leaves the nodes named in ``exclude_nodes`` in float and
records them as ``nodes_to_exclude``; the names are those of the graph it quantizes (stable between builds), the
same names ``quantized_scope(ctx).nodes()`` lists. A recipe may list the ``cpu_features`` its kernels assume.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kolite.manifest import PRECISIONS

from kolite_export.gates import Gate

if TYPE_CHECKING:
    from kolite_export.cpu import CpuFeatures
    from kolite_export.variants.context import BuildContext

__all__ = [
    "CPU",
    "CPU_CUDA",
    "CUDA",
    "VARIANTS",
    "Builder",
    "QuantizedScope",
    "VariantSpec",
    "default_variants",
    "register",
    "unregister",
]

CPU = ("CPUExecutionProvider",)
CUDA = ("CUDAExecutionProvider",)
CPU_CUDA = (*CPU, *CUDA)


@dataclass(frozen=True)
class QuantizedScope:
    """What a quantizing builder works on: ``graph`` (float) and the ``op_types`` it quantizes there;
    ``gemm_as_matmul`` when it rewrites Gemm nodes as MatMul + Add first (ONNX Runtime's dynamic quantizer)."""

    graph: Path
    op_types: tuple[str, ...]
    gemm_as_matmul: bool = False

    def nodes(self) -> dict[str, int]:
        """Node name → weight parameters of every node the builder quantizes, in graph order."""
        from kolite_export.variants.quantizable import weighted_nodes

        return weighted_nodes(self.graph, self.op_types, self.gemm_as_matmul)


class Builder(Protocol):
    def __call__(self, ctx: BuildContext, target: Path, exclude_nodes: tuple[str, ...] = ()) -> dict[str, Any]: ...


@dataclass(frozen=True)
class VariantSpec:
    """One variant: its graph builder, its gate, and what the manifest tells the runtime about it."""

    name: str
    precision: str  # one of kolite.manifest.PRECISIONS: what the runtime knows a provider can run
    build: Builder
    gate: Gate
    providers: tuple[str, ...]
    # Auto-selection preference written to the manifest, lower first (None: never picked by "auto"). The runtime
    # only considers variants whose providers include the device's, so one rank orders CPU and CUDA alike.
    rank: int | None = None
    default: bool = False  # exported when the caller names no variants
    summary: str = ""  # one line for `kolite export --help` and the README
    # The recipe fields an export (on this CPU) would choose now; an artifact whose recorded recipe differs in any of
    # them is rebuilt instead of reused. None: nothing in the recipe can go stale.
    current_recipe: Callable[[CpuFeatures], dict[str, Any]] | None = None
    # Quantizing variants: the float graph the builder quantizes and the op types it quantizes there. Present =
    # accuracy repair may keep some of those nodes in float (``exclude_nodes``).
    quantized_scope: Callable[[BuildContext], QuantizedScope] | None = None
    # Real texts the builder calibrates on (BuildContext.calibration_texts; never validation texts); 0: none.
    calibration_texts: int = 0
    # Quantizing variants, per task: the share of the quantizable weights export may put back in float after the
    # gate passes, spent on the int8-vs-float logit error the fidelity guard's τ reads
    # (``kolite_export.error_ranking``); a task not listed keeps none. Set: every passed build records
    # ``error_float_pass`` in its recipe, so one built before the pass is rebuilt.
    error_float_budget: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"variant {self.name!r}: precision {self.precision!r} is not one of {PRECISIONS}")
        if not self.providers:
            raise ValueError(f"variant {self.name!r} names no execution provider")

    @property
    def file(self) -> str:
        return f"model.{self.name}.onnx"

    @property
    def repairable(self) -> bool:
        return self.quantized_scope is not None


VARIANTS: dict[str, VariantSpec] = {}


def register(spec: VariantSpec) -> VariantSpec:
    """Add ``spec`` to the registry (its module's one registration line); a name can be registered once."""
    if spec.name in VARIANTS:
        raise ValueError(f"variant {spec.name!r} is already registered")
    VARIANTS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a variant (tests that register a throwaway one)."""
    VARIANTS.pop(name, None)


def default_variants() -> tuple[str, ...]:
    return tuple(name for name, spec in VARIANTS.items() if spec.default)
