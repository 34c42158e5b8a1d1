"""RAY TEST: without --address, the Ray engine starts its own Ray instance; it never joins one already running.

A "foreign" cluster is started here with ``ray start --head`` on a loopback port (and RAY_ADDRESS pointing at it,
as on a machine where someone ran ``ray start``); the job must not show up in that cluster's job table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from support import free_port
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
    temp_dir = tempfile.mkdtemp(prefix="kolite-foreign-")
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={port}"]
    command += ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={temp_dir}"]
    log = Path(temp_dir) / "head.log"
    with log.open("wb") as sink:
        head = subprocess.Popen([*command, "--disable-usage-stats"], env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        # --block logs this once every process of the node is up, then waits for a signal.
        while "Ray runtime started" not in log.read_text(errors="replace"):
            assert head.poll() is None, log.read_text(errors="replace")[-2000:]
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()  # it stops the processes it started (GCS, raylet...) and exits
        head.wait(timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)


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
