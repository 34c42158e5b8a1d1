"""The machine and software a result was measured on (recorded with every result)."""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["OTHER_WORK_LIMIT", "collect_environment", "cpu_family", "cpu_flags", "cpu_model", "cpu_vendor",
           "load_average", "machine_cpu_s", "nominal_clock_ghz", "other_work", "physical_cores", "shared_machine"]

_VERSIONED = ("kolite", "onnxruntime", "onnxruntime-gpu", "torch", "transformers", "optimum", "optimum-onnx",
              "tokenizers", "numpy", "onnx", "openvino", "nncf")
_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
                      "amx_int8", "amx_bf16", "fma", "f16c")


@lru_cache(maxsize=1)
def _cpuinfo_text() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


@lru_cache(maxsize=1)
def cpu_flags() -> set[str]:
    """CPU feature flags (Linux /proc/cpuinfo, else py-cpuinfo)."""
    for line in _cpuinfo_text().splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    try:
        import cpuinfo
    except ImportError:
        return set()
    return set(cpuinfo.get_cpu_info().get("flags", []))


def _cpuinfo_field(name: str) -> str | None:
    for line in _cpuinfo_text().splitlines():
        if line.split(":", 1)[0].strip() == name:
            return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_vendor() -> str:
    return _cpuinfo_field("vendor_id") or platform.processor() or ""


def cpu_family() -> int | None:
    family = _cpuinfo_field("cpu family")
    return int(family) if family and family.isdigit() else None


def nominal_clock_ghz() -> tuple[float | None, str]:
    """The clock the OS reports (max frequency where cpufreq exists, else /proc/cpuinfo's, the TSC clock in a VM)."""
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return int(max_freq.read_text().strip()) / 1e6, "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        pass
    mhz = _cpuinfo_field("cpu MHz")
    try:
        return (float(mhz) / 1000, "/proc/cpuinfo cpu MHz") if mhz else (None, "not reported")
    except ValueError:
        return None, "not reported"


def load_average() -> list[float]:
    """1/5/15-minute load averages: other work on the machine during the run (the cores may be shared)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_cpu_s() -> dict[str, float] | None:
    """CPU seconds since boot over all cores (``/proc/stat``'s first line): ``busy`` (every state but idle, iowait
    and steal) and ``steal`` (time the hypervisor gave this VM's vCPUs to someone else); None where there is no
    /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return {"busy": (user + nice + system + irq + softirq) / tick, "steal": steal / tick}


# Other work (cores) a timed worker may share the machine with before its figures are flagged: a quarter of a core
# beside a 2-thread contender on 2 vCPUs slows it by ~10 %, the size of the effects the bench resolves.
OTHER_WORK_LIMIT = 0.25


def shared_machine(others: dict[str, float]) -> bool:
    """Whether other work or hypervisor steal (``other_work``'s figures) passed ``OTHER_WORK_LIMIT`` cores."""
    return max(others["cores"], others["steal_cores"]) > OTHER_WORK_LIMIT


def other_work(before: dict[str, float] | None, after: dict[str, float] | None, own_cpu_s: float,
               wall_s: float) -> dict[str, float] | None:
    """Cores other work kept busy while a timed worker ran (machine busy CPU minus the worker's own, over its wall
    time), and cores stolen by the hypervisor: unlike the load average, this leaves out the bench's own threads."""
    if before is None or after is None or wall_s <= 0:
        return None
    others = max(0.0, after["busy"] - before["busy"] - own_cpu_s)
    return {"cores": round(others / wall_s, 3), "steal_cores": round((after["steal"] - before["steal"]) / wall_s, 3)}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def physical_cores() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.cpu_count(logical=False)


def _memory_gb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return round(psutil.virtual_memory().total / 2**30, 1)


def _providers() -> list[str]:
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def collect_environment(threads: int) -> dict[str, Any]:
    flags = cpu_flags()
    return {
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": physical_cores(),
        "cpu_vendor": cpu_vendor(),
        "cpu_family": cpu_family(),
        "memory_gb": _memory_gb(),
        "threads": threads,
        "cpu_flags": sorted(f for f in _FLAGS_OF_INTEREST if f in flags),
        "avx512": "avx512f" in flags,
        "vnni": bool({"avx512_vnni", "avx_vnni", "avx512vnni"} & flags),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in _VERSIONED if _version(name)},
        "onnxruntime_providers": _providers(),
        "execution_provider": "CPUExecutionProvider",
        "load_average_start": load_average(),
    }
