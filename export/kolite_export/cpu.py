"""CPU features that decide the int8 recipe (detected, never assumed: CI machines differ)."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuFeatures", "detect_cpu"]


@dataclass(frozen=True)
class CpuFeatures:
    machine: str
    flags: frozenset[str]

    @property
    def vnni(self) -> bool:
        return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & self.flags) or self.machine in ("arm64", "aarch64")

    @property
    def avx512(self) -> bool:
        return "avx512f" in self.flags

    @property
    def family(self) -> str:
        """x86-vnni, x86-avx512, x86-avx2, arm64 or generic."""
        if self.machine in ("arm64", "aarch64"):
            return "arm64"
        if self.vnni:
            return "x86-vnni"
        if self.avx512:
            return "x86-avx512"
        if "avx2" in self.flags:
            return "x86-avx2"
        return "generic"


def _linux_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def detect_cpu() -> CpuFeatures:
    flags = _linux_flags()
    if not flags:
        try:
            import cpuinfo  # py-cpuinfo, when installed

            flags = frozenset(cpuinfo.get_cpu_info().get("flags", []))
        except ImportError:
            flags = frozenset()
    return CpuFeatures(platform.machine().lower(), flags)
