"""Issue 21.8: serving several models follows Triton's convention. ``--exit-on-error`` (default) stops with exit 2
and every failing model's reason; ``--no-exit-on-error`` serves the healthy models while /health answers 503 and
/models shows the failed one with its reason. Models are named after the path as given (a symlink's own name), and
two paths with one name are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kolite.server.app import create_app
from kolite.server.cli import main as serve_main
from kolite.server.config import ServerConfig
from live_server import assert_error, serve_in_thread, serve_subprocess


@pytest.fixture(scope="module")
def artifact(tiny_artifact) -> Path:
    return tiny_artifact("000")


def _broken_graph(artifact: Path, folder: Path) -> Path:
    """Loads its manifest, fails at load: the labels do not fit the graph."""
    shutil.copytree(artifact, folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["labels"] = ["only"]
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def _broken_manifest(artifact: Path, folder: Path) -> Path:
    """Fails already at reading its manifest: a key given twice."""
    shutil.copytree(artifact, folder)
    text = (folder / "manifest.json").read_text(encoding="utf-8")
    (folder / "manifest.json").write_text(text.replace('"task":', '"task": "x", "task":', 1), encoding="utf-8")
    return folder


def test_exit_on_error_is_the_default_and_reports_every_failing_model(artifact, tmp_path):
    graph = _broken_graph(artifact, tmp_path / "graph-broken")
    manifest = _broken_manifest(artifact, tmp_path / "manifest-broken")
    result = subprocess.run([sys.executable, "-m", "kolite.server", str(artifact), str(graph), str(manifest),
                             "--port", "0", "--no-warmup"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 2, result.stderr
    assert "'graph-broken'" in result.stderr and "1 labels" in result.stderr
    assert "'manifest-broken'" in result.stderr and "'task' appears twice" in result.stderr
    assert "--no-exit-on-error" in result.stderr and "Traceback" not in result.stderr


def _wait_loaded(client) -> list[dict]:
    deadline = time.monotonic() + 90
    while True:
        models = client.get("/models").json()["models"]
        if all(info["state"] != "loading" for info in models):
            return models
        assert time.monotonic() < deadline, "a model never left the loading state"
        time.sleep(0.05)


def test_no_exit_on_error_serves_the_healthy_models_and_shows_the_failed_ones(artifact, tmp_path):
    graph = _broken_graph(artifact, tmp_path / "graph-broken")
    manifest = _broken_manifest(artifact, tmp_path / "manifest-broken")
    config = ServerConfig(artifacts=(artifact, graph, manifest), warmup=False, exit_on_error=False)
    with serve_in_thread(create_app(config), wait_healthy=False) as running, running.client() as client:
        models = {info["name"]: info for info in _wait_loaded(client)}
        assert models[artifact.name]["state"] == "ready" and models[artifact.name]["error"] is None
        assert models["graph-broken"]["state"] == "failed" and "1 labels" in models["graph-broken"]["error"]
        assert models["manifest-broken"]["state"] == "failed"
        assert "'task' appears twice" in models["manifest-broken"]["error"]
        health = assert_error(client.get("/health"), 503, "Unhealthy")
        assert "graph-broken" in health["error"] and "manifest-broken" in health["error"]
        answer = client.post(f"/models/{artifact.name}/predict", json={"inputs": "정말 재미있어요"})
        assert answer.status_code == 200 and answer.json()[0]["label"]
        refused = assert_error(client.post("/models/graph-broken/predict", json={"inputs": "좋다"}), 503, "Unhealthy")
        assert "graph-broken" in refused["error"] and "1 labels" in refused["error"]


def test_a_symlinked_artifact_is_served_under_the_symlink_name(artifact, tmp_path):
    shutil.copytree(artifact, tmp_path / "v3")
    (tmp_path / "current").symlink_to(tmp_path / "v3", target_is_directory=True)
    with serve_subprocess([tmp_path / "current"], "--no-warmup") as running, running.client() as client:
        (info,) = client.get("/models").json()["models"]
        assert info["name"] == "current"
        assert client.post("/models/current/predict", json={"inputs": "좋아요"}).status_code == 200
        assert_error(client.post("/models/v3/predict", json={"inputs": "좋아요"}), 404, "NotFound")


def test_two_paths_with_one_name_are_refused(artifact, tmp_path, capsys):
    shutil.copytree(artifact, tmp_path / "a" / "model")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model").symlink_to(artifact, target_is_directory=True)
    code = serve_main([str(tmp_path / "a" / "model"), str(tmp_path / "b" / "model"), "--port", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "both be served as 'model'" in err and str(tmp_path / "a" / "model") in err
