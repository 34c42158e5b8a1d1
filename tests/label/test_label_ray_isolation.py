"""RAY TEST: without --address, the Ray engine starts its own Ray instance; it never joins one already running.

A "foreign" cluster is started here with ``ray start --head`` on a loopback port (and RAY_ADDRESS pointing at it,
as on a machine where someone ran ``ray start``); the job must not show up in that cluster's job table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support import ray_head
from test_label import make_texts, write_tsv

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")

# Joins only the head node this test started itself (its 127.0.0.1 address is passed in argv), never an ambient one.
JOBS_OF = """
import json, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
from ray._private.state import jobs
print(json.dumps([job["DriverPid"] for job in jobs()]))
"""


@pytest.fixture
def foreign_cluster():
    """A head node of our own (``ray start --head --block``), stopped by signalling that one process: never
    ``ray stop``, which would stop every Ray instance on the machine."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    with ray_head(env, "kolite-foreign-") as address:
        yield address


def drivers_of(address: str) -> list[int]:
    result = subprocess.run(
        [sys.executable, "-c", JOBS_OF, address],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_engine_never_attaches_to_a_running_cluster(foreign_cluster, tiny_artifact, tmp_path):
    source = write_tsv(tmp_path / "in.tsv", make_texts(40, seed=17))
    out = tmp_path / "out.tsv"
    command = [sys.executable, "-m", "kolite.cli", "label", str(source), "--model", str(tiny_artifact("000"))]
    command += ["--out", str(out), "--prefix", "p_", "--engine", "ray", "--no-progress"]
    # As on a machine where someone ran `ray start` and exported RAY_ADDRESS; no token auth, so joining that
    # cluster would simply work. A fresh process, as a user runs it.
    env = {**os.environ, "RAY_ADDRESS": foreign_cluster, "RAY_AUTH_MODE": "disabled"}
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, stderr = job.communicate(timeout=300)
    assert job.returncode == 0, stderr[-2000:]
    assert len(out.read_text(encoding="utf-8").splitlines()) == 41
    assert job.pid not in drivers_of(foreign_cluster)  # only the checking script itself joined that cluster
