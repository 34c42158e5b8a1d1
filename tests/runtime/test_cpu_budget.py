"""Threads follow the container's CPU quota (cgroup v2 and v1) and the affinity mask, whichever is smaller."""

from __future__ import annotations

import os

import kolite
import pytest
from kolite import cpu_budget as budget_module
from kolite.cpu_budget import cgroup_quota, cpu_budget


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_cgroup_v2_quota_of_the_own_path_and_its_parents(tmp_path):
    write(tmp_path / "proc", "0::/kubepods/pod1/ctr\n")
    root = tmp_path / "cg"
    write(root / "kubepods/pod1/ctr/cpu.max", "max 100000\n")
    write(root / "kubepods/pod1/cpu.max", "150000 100000\n")  # the pod's limit caps its container
    write(root / "kubepods/cpu.max", "400000 100000\n")
    assert cgroup_quota(root, tmp_path / "proc") == 1.5


def test_cgroup_v2_in_a_container_sees_only_its_own_root(tmp_path):
    write(tmp_path / "proc", "0::/system.slice/docker-abc.scope\n")  # the host's path, not mounted inside
    write(tmp_path / "cg/cpu.max", "200000 100000\n")
    assert cgroup_quota(tmp_path / "cg", tmp_path / "proc") == 2.0


def test_cgroup_v1_cfs_quota(tmp_path):
    write(tmp_path / "proc", "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    mount = tmp_path / "cg/cpu,cpuacct"
    write(mount / "docker/abc/cpu.cfs_quota_us", "50000\n")
    write(mount / "docker/abc/cpu.cfs_period_us", "100000\n")
    write(mount / "cpu.cfs_quota_us", "-1\n")
    write(mount / "cpu.cfs_period_us", "100000\n")
    assert cgroup_quota(tmp_path / "cg", tmp_path / "proc") == 0.5


@pytest.mark.parametrize("content", ["max 100000\n", "garbage\n", ""])
def test_no_quota(tmp_path, content):
    write(tmp_path / "proc", "0::/\n")
    write(tmp_path / "cg/cpu.max", content)
    assert cgroup_quota(tmp_path / "cg", tmp_path / "proc") is None
    assert cgroup_quota(tmp_path / "cg", tmp_path / "missing") is None


@pytest.mark.parametrize(("quota", "threads"), [("150000 100000", 1), ("50000 100000", 1), ("300000 100000", 3)])
def test_budget_is_the_smallest_limit_and_says_why(tmp_path, monkeypatch, quota, threads):
    monkeypatch.setattr(budget_module, "_affinity", lambda: 8)
    monkeypatch.setattr(budget_module, "physical_cores", lambda: 4)
    write(tmp_path / "proc", "0::/\n")
    write(tmp_path / "cg/cpu.max", quota)
    budget = cpu_budget(tmp_path / "cg", tmp_path / "proc")
    assert budget.threads == threads
    assert budget.reason.startswith(f"cgroup CPU quota {int(quota.split()[0]) / 100000:g}")
    assert "8 CPUs in the affinity mask" in budget.reason and "4 physical cores" in budget.reason


def test_affinity_mask_wins_when_smallest(tmp_path, monkeypatch):
    monkeypatch.setattr(budget_module, "_affinity", lambda: 1)
    monkeypatch.setattr(budget_module, "physical_cores", lambda: 4)
    write(tmp_path / "proc", "0::/\n")
    write(tmp_path / "cg/cpu.max", "max 100000")
    budget = cpu_budget(tmp_path / "cg", tmp_path / "proc")
    assert budget.threads == 1 and budget.reason.startswith("1 CPUs in the affinity mask")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="affinity masks are a Linux feature")
def test_loaded_model_uses_the_budget_and_info_shows_it(tiny_artifact, capsys):
    from kolite.cli import main

    os_mask = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(os_mask)})
        with kolite.load(tiny_artifact("000"), variant="fp32") as model:
            assert model.threads == 1
        assert main(["info", str(tiny_artifact("000"))]) == 0
        assert "threads:      1 (1 CPUs in the affinity mask" in capsys.readouterr().out
    finally:
        os.sched_setaffinity(0, os_mask)
