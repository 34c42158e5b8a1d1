"""CPU features that decide the int8 recipe (detected, never assumed: CI machines differ).

The flags come from the runtime's probe (``kolite.cpu_features``), the one place that reads them, so the export
machine and the serving machine are judged by the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from kolite.cpu_features import CpuInfo, has_feature, probe_cpu

__all__ = ["CpuFeatures", "detect_cpu"]


@dataclass(frozen=True)
class CpuFeatures:
    machine: str
    flags: frozenset[str]

    @property
    def vnni(self) -> bool:
        return has_feature(CpuInfo(self.machine, self.flags), "vnni")

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


def detect_cpu() -> CpuFeatures:
    cpu = probe_cpu()
    return CpuFeatures(cpu.machine, cpu.flags)
