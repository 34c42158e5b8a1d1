"""Serving-CPU check: an int8 variant quantized for VNNI is not auto-picked on a CPU without it (a loud warning and
a safe fallback), a named one loads with a warning, and with no safe variant the error names the fix.
The CPU is substituted through ``kolite.cpu_features.probe_cpu``."""

from __future__ import annotations

import json
import shutil

import kolite
import pytest
from kolite import cpu_features
from kolite.cpu_features import CpuInfo, assumed_features, missing_features
from kolite.errors import CpuFeatureError

AVX2_ONLY = CpuInfo("x86_64", frozenset({"sse4_2", "avx", "avx2", "fma"}))
WITH_VNNI = CpuInfo("x86_64", frozenset({"avx2", "avx512f", "avx512_vnni"}))
ARM = CpuInfo("aarch64", frozenset({"fp", "asimd"}))
UNREADABLE = CpuInfo("x86_64", frozenset())


def _artifact(tiny_artifact, tmp_path, edit=None):
    folder = shutil.copytree(tiny_artifact("000"), tmp_path / "art")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["variants"]["int8"]["cpu_features"] = ["vnni"]
    manifest["variants"]["int8"]["recipe"]["reduce_range"] = False
    if edit:
        edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def _on(monkeypatch, cpu):
    monkeypatch.setattr(cpu_features, "probe_cpu", lambda: cpu)


def test_auto_falls_back_loudly_on_a_cpu_without_vnni(tiny_artifact, tmp_path, monkeypatch):
    folder = _artifact(tiny_artifact, tmp_path)
    _on(monkeypatch, AVX2_ONLY)
    with pytest.warns(RuntimeWarning, match=r"'int8-static' was quantized for CPUs with VNNI.*re-export on this "
                                            r"CPU.*Falling back to 'fp32-opt'"):
        model = kolite.load(folder)
    assert model.variant.name == "fp32-opt"  # neither int8 graph is exact there: both assume VNNI
    _on(monkeypatch, WITH_VNNI)
    assert kolite.load(folder).variant.name == "int8-static"


def test_a_named_unsafe_variant_loads_with_a_warning(tiny_artifact, tmp_path, monkeypatch):
    folder = _artifact(tiny_artifact, tmp_path)
    _on(monkeypatch, AVX2_ONLY)
    with pytest.warns(RuntimeWarning, match="lacks.*loading it only because it was named"):
        assert kolite.load(folder, variant="int8").variant.name == "int8"


def test_no_safe_variant_raises_with_the_fix(tiny_artifact, tmp_path, monkeypatch):
    def only_int8_passes(manifest):
        for name, variant in manifest["variants"].items():
            if name != "int8":
                variant["status"] = "failed"

    folder = _artifact(tiny_artifact, tmp_path, only_int8_passes)
    _on(monkeypatch, AVX2_ONLY)
    with pytest.raises(CpuFeatureError, match="re-export on this CPU"):
        kolite.load(folder)


def test_feature_rules():
    from kolite.manifest import Variant

    full_range = Variant("int8", "model.int8.onnx", "int8", "0" * 64, 1, cpu_features=("vnni",))
    reduced = Variant("int8", "model.int8.onnx", "int8", "0" * 64, 1, recipe={"reduce_range": True})
    old_full_range = Variant("int8", "model.int8.onnx", "int8", "0" * 64, 1, recipe={"reduce_range": False})
    fp32 = Variant("fp32", "model.fp32.onnx", "fp32", "0" * 64, 1)
    assert missing_features(full_range, AVX2_ONLY) == ("vnni",)
    assert missing_features(full_range, WITH_VNNI) == () and missing_features(full_range, ARM) == ()
    assert missing_features(full_range, UNREADABLE) == ()  # cannot tell: no false alarm
    assert missing_features(reduced, AVX2_ONLY) == () and missing_features(fp32, AVX2_ONLY) == ()
    # A manifest written before the field existed: the recipe says full range, so VNNI is assumed.
    assert assumed_features(old_full_range) == ("vnni",) and missing_features(old_full_range, AVX2_ONLY) == ("vnni",)
