"""What the serving CPU can do, checked against what an int8 graph's recipe assumes.

The int8 recipe follows the *export* machine: on x86 with VNNI (``vpdpbusd``, 32-bit sums) or on ARM it uses the
full 8-bit weight range; on x86 without VNNI, ONNX Runtime's u8×s8 kernels use ``vpmaddubsw``, whose 16-bit
intermediate sums can saturate with full-range weights (onnxruntime #5849, #6004), so those recipes use 7-bit
weights (``reduce_range``), which are safe anywhere. The manifest records the features a variant assumes
(``Variant.cpu_features``); ``kolite.load`` skips a variant this CPU lacks them for, loudly.

Pure functions over a ``CpuInfo``; ``probe_cpu`` is looked up at call time, so tests substitute it.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kolite.errors import CpuFeatureError
from kolite.manifest import Variant

__all__ = [
    "FEATURES",
    "CpuInfo",
    "assumed_features",
    "first_safe_variant",
    "has_feature",
    "missing_features",
    "probe_cpu",
    "unsafe_variant_message",
]

_ARM = ("arm64", "aarch64")
_VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
FEATURES = ("vnni",)


@dataclass(frozen=True)
class CpuInfo:
    machine: str  # platform.machine(), lower case
    flags: frozenset[str]  # /proc/cpuinfo flags (x86) or Features (ARM); empty when they cannot be read

    @property
    def known(self) -> bool:
        """Whether the flags could be read (ARM needs none to decide)."""
        return bool(self.flags) or self.machine in _ARM


def has_feature(cpu: CpuInfo, name: str) -> bool:
    if name == "vnni":  # "int8 dot products with 32-bit sums": VNNI on x86, native on ARM
        return cpu.machine in _ARM or bool(_VNNI_FLAGS & cpu.flags)
    raise ValueError(f"unknown CPU feature {name!r}; known: {', '.join(FEATURES)}")


@lru_cache(maxsize=1)
def _proc_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def probe_cpu() -> CpuInfo:
    """This machine's CPU: Linux's /proc/cpuinfo, else py-cpuinfo when it is installed, else no flags."""
    flags = _proc_flags()
    if not flags:
        try:
            import cpuinfo  # py-cpuinfo: optional, not a runtime dependency

            flags = frozenset(cpuinfo.get_cpu_info().get("flags", []))
        except ImportError:
            flags = frozenset()
    return CpuInfo(platform.machine().lower(), flags)


def assumed_features(variant: Variant) -> tuple[str, ...]:
    """The features ``variant`` assumes; for a manifest before 1.1, read from its int8 recipe (full range = VNNI)."""
    if variant.cpu_features:
        return variant.cpu_features
    if variant.precision == "int8" and variant.recipe.get("reduce_range") is False:
        return ("vnni",)
    return ()


def missing_features(variant: Variant, cpu: CpuInfo | None = None) -> tuple[str, ...]:
    """Features ``variant`` assumes that ``cpu`` (default: this machine) lacks. Unreadable flags count as
    present: kolite cannot tell, and warning on every such machine would teach people to ignore the warning."""
    cpu = cpu or probe_cpu()
    if not cpu.known:
        return ()
    return tuple(name for name in assumed_features(variant) if name in FEATURES and not has_feature(cpu, name))


def unsafe_variant_message(model: str, variant: Variant, missing: Sequence[str]) -> str:
    return (
        f"{model}: variant {variant.name!r} was quantized for CPUs with {', '.join(missing).upper()} "
        f"(recipe: reduce_range={variant.recipe.get('reduce_range')}), which this CPU lacks: its int8 kernels can "
        "saturate and change answers. Fix: re-export on this CPU (kolite export picks 7-bit weights there) or "
        "use an fp32 variant"
    )


def first_safe_variant(
    model: str, candidates: Sequence[Variant], warn: Callable[[str], None], cpu: CpuInfo | None = None
) -> Variant:
    """The first of ``candidates`` (in preference order) this CPU runs exactly; every one skipped is warned about.
    Raises CpuFeatureError when none is safe."""
    cpu = cpu or probe_cpu()
    skipped = []
    for variant in candidates:
        missing = missing_features(variant, cpu)
        if not missing:
            if skipped:
                warn(f"{'; '.join(skipped)}. Falling back to {variant.name!r}")
            return variant
        skipped.append(unsafe_variant_message(model, variant, missing))
    raise CpuFeatureError("; ".join(skipped) or f"{model}: no variant to choose from")
