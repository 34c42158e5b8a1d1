"""Memory profiles: `edge` serves one session without onnxruntime's arena; `default` keeps the fast setup."""

from __future__ import annotations

import argparse

import pytest
from kolite.errors import KoliteError
from kolite.memory import MEMORY_PROFILES, memory_profile
from kolite.server.cli import MEMORY_PROFILE_ENV, add_arguments, build_config
from kolite.server.config import ServerConfig
from kolite.server.metrics import ServerMetrics
from kolite.server.models import SESSION_OPTIONS, ServedModel


def _serve_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_unknown_profiles_are_refused_by_name():
    with pytest.raises(KoliteError, match="valid: default, edge"):
        memory_profile("tiny")
    with pytest.raises(ValueError, match="memory_profile must be one of"):
        ServerConfig(artifacts=(), memory_profile="tiny")


def test_edge_profile_keeps_the_servers_session_options():
    merged = MEMORY_PROFILES["edge"].merged_options(SESSION_OPTIONS)
    assert merged == {**SESSION_OPTIONS, "enable_cpu_mem_arena": False}
    assert MEMORY_PROFILES["default"].merged_options(SESSION_OPTIONS) == SESSION_OPTIONS


def test_serve_takes_the_profile_from_the_flag_or_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(MEMORY_PROFILE_ENV, raising=False)
    assert build_config(_serve_args([str(tmp_path)])).memory_profile == "default"
    monkeypatch.setenv(MEMORY_PROFILE_ENV, "edge")  # what the container image's -e KOLITE_MEMORY_PROFILE sets
    assert build_config(_serve_args([str(tmp_path)])).memory_profile == "edge"
    assert build_config(_serve_args([str(tmp_path), "--memory-profile", "default"])).memory_profile == "default"
    with pytest.raises(SystemExit):
        _serve_args([str(tmp_path), "--memory-profile", "huge"])


@pytest.mark.parametrize("profile, arena, parallel", [("default", True, 2), ("edge", False, 1)])
def test_served_model_loads_with_its_profile(tiny_artifact, profile, arena, parallel):
    config = ServerConfig(artifacts=(tiny_artifact("000"),), threads=2, memory_profile=profile)
    served = ServedModel(tiny_artifact("000"), config, ServerMetrics())
    served.load()
    try:
        session = served.model.session
        assert session.session.get_session_options().enable_cpu_mem_arena is arena
        assert session.parallel == parallel
        # the throughput-mode sessions exist after the default warm-up only
        assert (session._workers is not None) is (profile == "default")
        assert served.state == "ready"
    finally:
        served.close()
