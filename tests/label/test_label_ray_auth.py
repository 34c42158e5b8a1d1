"""RAY TEST: Ray's token authentication (on by default in Ray 2.60), issue 21 item 9.

* The private instance of ``--engine ray`` (no ``--address``) writes nothing outside its temp dir (no
  ``~/.ray/auth_token``) and prints no token warning.
* ``--address`` joins a token-auth cluster with the cluster's token (``RAY_AUTH_TOKEN_PATH``); without it the job
  stops with one clear line naming the fix.

The cluster is a ``ray start --head`` this test starts itself on 127.0.0.1 with its own temp dir and HOME, stopped by
signalling that one process. Every child process gets an isolated HOME, so no test reads or writes ``~/.ray``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from support import ray_head
from test_label import make_texts, write_tsv

pytestmark = pytest.mark.ray
pytest.importorskip("ray")

RAY_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in RAY_ENV}
    return {**env, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", **extra}


@pytest.fixture
def token_cluster(tmp_path):
    token = tmp_path / "cluster-token"
    token.write_text(secrets.token_hex(32), encoding="ascii")
    home = tmp_path / "head-home"
    home.mkdir()
    env = clean_env(home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    with ray_head(env, "kolite-auth-") as address:
        yield address, token


def label(source: Path, out: Path, artifact: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "kolite.cli", "label", str(source), "--model", str(artifact), "--out", str(out)]
    command += ["--engine", "ray", "--no-progress", "--workers", "1", "--threads", "1", "--prefix", "p_", *extra]
    env = {**env, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_private_instance_writes_nothing_outside_its_temp_dir(tiny_artifact, tmp_path):
    source = write_tsv(tmp_path / "in.tsv", make_texts(20, seed=3))
    home = tmp_path / "home"
    home.mkdir()
    done = label(source, tmp_path / "out.tsv", tiny_artifact("000"), clean_env(home))
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (home / ".ray").exists()
    assert "Token authentication" not in done.stderr and "auth_token" not in done.stderr
    assert (tmp_path / "out.tsv").read_text(encoding="utf-8").count("\n") == 21


def test_joining_a_token_cluster_needs_and_uses_its_token(token_cluster, tiny_artifact, tmp_path):
    address, token = token_cluster
    source = write_tsv(tmp_path / "in.tsv", make_texts(20, seed=4))
    home = tmp_path / "home"
    home.mkdir()
    artifact = tiny_artifact("000")

    joined = label(source, tmp_path / "out.tsv", artifact, clean_env(home, RAY_AUTH_TOKEN_PATH=str(token)),
                   "--address", address)
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert (tmp_path / "out.tsv").read_text(encoding="utf-8").count("\n") == 21

    refused = label(source, tmp_path / "no-token.tsv", artifact, clean_env(home), "--address", address,
                    "--stall-timeout", "60")
    assert refused.returncode == 2, refused.stderr[-3000:]
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("kolite label: error: cannot join the Ray cluster") and "RAY_AUTH_TOKEN_PATH" in last
    assert not (home / ".ray").exists()
