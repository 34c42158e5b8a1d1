"""One source resolver: hub id or folder, HF_HUB_OFFLINE and the hub's errors are decided in kolite.sources, for the
runtime and export alike."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError
from kolite.errors import ModelNotFoundError, OfflineError
from kolite.sources import is_offline, looks_like_hub_id, snapshot


@pytest.mark.parametrize(("value", "offline"), [("1", True), ("true", True), (" ON ", True), ("yes", True),
                                                 ("0", False), ("", False), ("false", False), ("off", False)])
def test_hf_hub_offline_is_read_one_way(monkeypatch: pytest.MonkeyPatch, value: str, offline: bool) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert is_offline() is offline


def test_offline_looks_in_the_cache_only_and_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def cache_only(repo_id: str, revision: str | None = None, **options: object) -> str:
        calls.append(options)
        raise LocalEntryNotFoundError("not in the cache")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", cache_only)
    with pytest.raises(OfflineError, match=r"HF_HUB_OFFLINE is set.*huggingface-cli download owner/model"):
        snapshot("owner/model", allow_patterns=["manifest.json"])
    assert calls == [{"allow_patterns": ["manifest.json"], "local_files_only": True}]


@pytest.mark.parametrize("ref", ["owner/name", "klue/roberta-base", "a.b/c-d_e"])
def test_hub_ids(ref: str) -> None:
    assert looks_like_hub_id(ref)


@pytest.mark.parametrize("ref", ["./owner/name", "~/models", "a/b/c", "/abs/path", "owner/../etc", "owner/"])
def test_paths_are_not_hub_ids(ref: str) -> None:
    assert not looks_like_hub_id(ref)


def test_export_decides_hub_id_or_folder_by_the_runtimes_rule(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from kolite_export.sources import resolve_source

    assert resolve_source(tmp_path).kind == "local"
    with pytest.raises(ModelNotFoundError, match="neither a folder nor a hub id"):
        resolve_source(str(tmp_path / "missing" / "deeper"))
    fetched = []
    monkeypatch.setattr("kolite_export.sources.snapshot", lambda ref, revision, **kw: fetched.append(ref) or tmp_path)
    assert resolve_source("owner/name").kind == "hub" and fetched == ["owner/name"]
