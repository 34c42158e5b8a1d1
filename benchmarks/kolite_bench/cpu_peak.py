"""The CPU's theoretical int8 peak: cores × clock × int8 ops per cycle per core, for AVX-512 VNNI and for AMX.

Int8 ops per cycle per core (a multiply and an add count as 2 ops, as the GEMM benchmark counts 2·M·K·N):

- AVX-512 VNNI: one ``VPDPBUSD zmm`` multiplies 64 u8×s8 pairs and adds them into 16 int32 lanes (128 ops). Intel
  cores with two 512-bit FMA units (Xeon Scalable parts; ports 0 and 5) start two per cycle: **256 ops/cycle**.
  uops.info measures a reciprocal throughput of 0.5 cycles for ``VPDPBUSD (ZMM, ZMM, ZMM)`` on Golden Cove (the core
  of Sapphire/Emerald Rapids) and 1.0 on client Ice Lake (one 512-bit unit, half the rate). AMD Zen 4 runs 512-bit
  ops as two 256-bit halves (128 ops/cycle); Zen 5 has full-width units (256).
- AVX-VNNI (256-bit ``VPDPBUSD ymm``, two per cycle): 128 ops/cycle.
- AMX-INT8: one ``TDPBUSD`` multiplies a 16×64 u8 tile by a 64×16 s8 tile into 16×16 int32 (16,384 MACs) and the
  TMUL unit accepts one every 16 cycles: 1,024 MACs = **2,048 ops/cycle**, the figure Intel gives for Sapphire
  Rapids (8× AVX-512 VNNI's 256).

The clock is measured, not read: a VM's /proc/cpuinfo shows the nominal (TSC) clock, and turbo runs above it. A
chain of dependent 64-bit ``imul`` (3-cycle latency on every Intel and AMD core since Nehalem / Zen) is timed in
CPU time, so other processes on the machine do not slow it. Heavy AVX-512/AMX code may run at a lower clock than
this scalar loop: the peaks below are ceilings, never estimates of what a kernel reaches.
"""

from __future__ import annotations

import ctypes
import mmap
import platform
import time
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CorePeak", "int8_ops_per_cycle", "measure_clock_ghz", "theoretical_peaks"]

_IMUL_LATENCY = 3
_UNROLL = 24  # imuls per loop iteration: the loop's dec/jnz hides under 72 cycles of dependent work


@dataclass(frozen=True)
class CorePeak:
    """Int8 ops per cycle of one core (None where the CPU lacks the instructions) and where the numbers come from."""

    vnni_ops_per_cycle: int | None
    amx_ops_per_cycle: int | None
    basis: str


def int8_ops_per_cycle(vendor: str, family: int | None, flags: set[str]) -> CorePeak:
    """Per-core int8 ops/cycle for this CPU's vector (VNNI) and matrix (AMX) units (see the module docstring)."""
    amx = 2048 if "amx_int8" in flags else None
    amd = "AMD" in vendor.upper()
    if {"avx512_vnni", "avx512vnni"} & flags:
        if amd and family is not None and family < 0x1A:
            vnni, basis = 128, "AVX-512 VNNI on Zen 4 (512-bit ops in two 256-bit halves): 1 VPDPBUSD zmm/cycle"
        elif amd:
            vnni, basis = 256, "AVX-512 VNNI on Zen 5 (full-width units): 2 VPDPBUSD zmm/cycle"
        else:
            vnni, basis = 256, ("AVX-512 VNNI, two 512-bit FMA units assumed (Xeon Scalable): 2 VPDPBUSD zmm/cycle;"
                                " a one-unit part reaches half")
    elif "avx_vnni" in flags:
        vnni, basis = 128, "AVX-VNNI (256-bit): 2 VPDPBUSD ymm/cycle"
    else:
        vnni, basis = None, "no VNNI: int8 dot products need 2-3 instructions each (no VNNI ceiling computed)"
    if amx:
        basis += "; AMX-INT8: 1 TDPBUSD (16,384 MACs) per 16 cycles = 2,048 ops/cycle"
    return CorePeak(vnni, amx, basis)


def _imul_chain() -> Any:
    """A native function ``f(n)`` running n × _UNROLL dependent ``imul rdx, rdx`` (x86-64 System V ABI)."""
    loop = bytes.fromhex("480fafd2") * _UNROLL + bytes.fromhex("48ffc9")  # imul rdx, rdx ×N; dec rcx
    jump = bytes([0x75, (256 - (len(loop) + 2)) & 0xFF])  # jnz back to the first imul
    code = bytes.fromhex("4889f9" "ba01000000") + loop + jump + bytes.fromhex("4889d0c3")  # mov rcx,rdi; mov edx,1
    buffer = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    buffer.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    function = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)(address)
    function.keepalive = buffer  # type: ignore[attr-defined] - the code must outlive the function object
    return function


def measure_clock_ghz(trials: int = 7, iterations: int = 2_000_000) -> float | None:
    """The core clock while running scalar code (best of ``trials``, CPU time); None off x86-64 Linux or where
    executable memory is refused."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        function = _imul_chain()
    except (OSError, ValueError, AttributeError):
        return None
    best = 0.0
    for _ in range(trials):
        start = time.thread_time()
        function(iterations)
        seconds = time.thread_time() - start
        if seconds > 0:
            best = max(best, iterations * _UNROLL * _IMUL_LATENCY / seconds / 1e9)
    return best or None


def theoretical_peaks(cores: int, ghz: float | None, peak: CorePeak) -> dict[str, Any]:
    """GOP/s of ``cores`` cores at ``ghz`` for VNNI and AMX (None where the unit or the clock is unknown)."""

    def gops(ops_per_cycle: int | None) -> float | None:
        return cores * ghz * ops_per_cycle if ops_per_cycle and ghz else None

    return {"cores": cores, "ghz": ghz, **asdict(peak), "vnni_peak_gops": gops(peak.vnni_ops_per_cycle),
            "amx_peak_gops": gops(peak.amx_ops_per_cycle)}
