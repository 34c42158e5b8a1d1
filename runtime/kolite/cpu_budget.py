"""How many threads kolite may use: physical cores, the affinity mask and the container's CPU quota, whichever is
smallest.

Containers started with ``docker run --cpus 2`` (or a Kubernetes CPU limit) see every core of the host in
``os.cpu_count()`` but get only a quota of CPU time from the cgroup; a runtime that sizes its thread pool to the
host then loses most of each period to throttling (the several-fold slowdowns reported against TEI, #170/#404).
kolite reads the quota like Go's automaxprocs does: cgroup v2 ``cpu.max`` or cgroup v1 ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us``, on the process's own cgroup path and every parent, rounded down (at least one thread).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["CpuBudget", "cgroup_quota", "cpu_budget", "physical_cores"]


@dataclass(frozen=True)
class CpuBudget:
    """The thread count kolite uses by default, and why (shown by ``kolite info`` and the server's log)."""

    threads: int
    reason: str


def cpu_budget(cgroup_root: str | Path = "/sys/fs/cgroup", proc_cgroup: str | Path = "/proc/self/cgroup") -> CpuBudget:
    """``min(physical cores, CPUs in the affinity mask, floor(cgroup quota))``, at least 1."""
    limits: list[tuple[int, str]] = []
    affinity = _affinity()
    limits.append((affinity, f"{affinity} CPUs in the affinity mask"))
    physical = physical_cores()
    if physical:
        # hyper-threads slow GEMM-bound inference down: one thread per physical core
        limits.append((physical, f"{physical} physical cores"))
    quota = cgroup_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        limits.append((max(1, math.floor(quota)), f"cgroup CPU quota {quota:g}"))
    threads, why = min(limits, key=lambda limit: limit[0])
    others = ", ".join(text for _, text in limits if text != why)
    return CpuBudget(max(1, threads), why + (f" (other limits: {others})" if others else ""))


def cgroup_quota(
    cgroup_root: str | Path = "/sys/fs/cgroup", proc_cgroup: str | Path = "/proc/self/cgroup"
) -> float | None:
    """CPUs the cgroup lets this process use per period (e.g. 1.5), or None without a quota."""
    root = Path(cgroup_root)
    try:
        lines = Path(proc_cgroup).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # cgroup v2: one unified hierarchy
            quotas += [_v2_quota(folder) for folder in _ancestors(root, path)]
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller's own mount
            mount = next((root / name for name in (controllers, "cpu,cpuacct", "cpu") if (root / name).is_dir()), None)
            if mount is not None:
                quotas += [_v1_quota(folder) for folder in _ancestors(mount, path)]
    found = [quota for quota in quotas if quota is not None]
    return min(found) if found else None


def _ancestors(mount: Path, path: str) -> list[Path]:
    """The cgroup's folder and every parent up to the mount (a parent's quota caps its children). Inside a
    container the path may name the host's hierarchy, which is not mounted: then only the mount root counts."""
    folder = mount / path.strip("/")
    if not folder.is_dir():
        return [mount]
    folders = [folder]
    while folder != mount and mount in folder.parents:
        folder = folder.parent
        folders.append(folder)
    return folders


def _v2_quota(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text(encoding="utf-8").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return _ratio(quota, period)


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = (folder / "cpu.cfs_quota_us").read_text(encoding="utf-8").strip()
        period = (folder / "cpu.cfs_period_us").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return _ratio(quota, period)


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        return os.cpu_count() or 1


@lru_cache(maxsize=1)
def physical_cores() -> int | None:
    """Physical cores (psutil when installed, else /proc/cpuinfo's distinct core ids), or None if unknown."""
    try:
        import psutil  # optional; present in dev/bench environments

        return psutil.cpu_count(logical=False)
    except ImportError:
        pass
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    cores = set()
    physical_id = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical_id = value.strip()
        elif key == "core id":
            cores.add((physical_id, value.strip()))
    return len(cores) or None
