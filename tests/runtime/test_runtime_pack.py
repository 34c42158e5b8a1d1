"""`kolite pack`: a copy with only the served variants, whose manifest still verifies; bad requests lose nothing."""

from __future__ import annotations

import json
import shutil

import kolite
import numpy as np
import pytest
from kolite.cli import main
from kolite.errors import IntegrityError, KoliteError
from kolite.manifest import load_manifest
from kolite.pack import pack

TEXTS = ["이 영화 정말 재미있어요.", "시간 낭비였다.", "\u1100\u1161\u11a8 별로 😡"]


def _raw(artifact):
    return json.loads((artifact / "manifest.json").read_text(encoding="utf-8"))


def test_pack_keeps_only_the_named_variant_and_its_answers(tiny_artifact, tmp_path):
    source = tiny_artifact("000")
    out = pack(source, ["int8-static"], tmp_path / "packed")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.int8-static.onnx", "tokenizer.json"]
    original, packed = _raw(source), _raw(out)
    # Same schema and the kept variant's entry as export wrote it (gates, rank, cpu_features); nothing else changed.
    assert list(packed["variants"]) == ["int8-static"]
    # ...but its fidelity guard, whose float graph (fp32-opt) is not packed: the packed variant serves unguarded.
    assert original["variants"]["int8-static"]["guard"]["float_variant"] == "fp32-opt"
    kept = {k: v for k, v in original["variants"]["int8-static"].items() if k != "guard"}
    assert packed["variants"]["int8-static"] == kept
    assert {k: v for k, v in packed.items() if k != "variants"} == {
        k: v for k, v in original.items() if k != "variants"
    }
    with kolite.load(source, variant="int8-static", guard=False) as full, kolite.load(out) as small:
        assert small.guard is None
        assert small.variant.name == "int8-static"
        expected = full.run(full.encode(TEXTS))
        actual = small.run(small.encode(TEXTS))
    for left, right in zip(expected, actual, strict=True):
        np.testing.assert_array_equal(left, right)


def test_pack_keeps_the_guard_when_its_float_graph_is_packed_too(tiny_artifact, tmp_path):
    source = tiny_artifact("000")
    out = pack(source, ["int8-static", "fp32-opt"], tmp_path / "guarded")
    assert _raw(out)["variants"]["int8-static"] == _raw(source)["variants"]["int8-static"]
    with kolite.load(source, variant="int8-static", guard=True) as full, \
            kolite.load(out, variant="int8-static", guard=True) as small:
        assert small.guard is not None and small.guard.tau == full.guard.tau
        for left, right in zip(full.run(full.encode(TEXTS)), small.run(small.encode(TEXTS)), strict=True):
            np.testing.assert_array_equal(left, right)


def test_pack_cli_writes_an_artifact_that_verifies(tiny_artifact, tmp_path, capsys):
    out = tmp_path / "edge" / "000"
    assert main(["pack", str(tiny_artifact("000")), "--variants", "int8-static,fp32", "--out", str(out)]) == 0
    assert sorted(load_manifest(out).variants) == ["fp32", "int8-static"]
    assert main(["info", str(out), "--verify"]) == 0
    assert "sha256 ok: model.fp32.onnx" in capsys.readouterr().out


@pytest.mark.parametrize("variants, message", [(["int4"], "has no variant 'int4'"), ([], "at least one variant")])
def test_pack_refuses_unknown_variants_and_writes_nothing(tiny_artifact, tmp_path, variants, message):
    with pytest.raises(KoliteError, match=message):
        pack(tiny_artifact("000"), variants, tmp_path / "packed")
    assert list(tmp_path.iterdir()) == []


def test_pack_refuses_a_failed_variant(tiny_artifact, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(tiny_artifact("000"), source)
    data = _raw(source)
    data["variants"]["int8"]["status"] = "failed"
    (source / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KoliteError, match="failed validation"):
        pack(source, ["int8"], tmp_path / "packed")
    assert not (tmp_path / "packed").exists()


def test_pack_never_overwrites(tiny_artifact, tmp_path):
    out = tmp_path / "packed"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(KoliteError, match="already exists"):
        pack(tiny_artifact("000"), ["int8-static"], out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(KoliteError, match="must differ"):
        pack(tiny_artifact("000"), ["int8-static"], tiny_artifact("000"))


def test_a_tampered_graph_is_not_packed_and_leaves_no_partial_copy(tiny_artifact, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(tiny_artifact("000"), source)
    graph = source / "model.int8-static.onnx"
    data = bytearray(graph.read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes
    graph.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="does not match the manifest"):
        pack(source, ["int8-static"], tmp_path / "out" / "packed")
    assert list((tmp_path / "out").iterdir()) == []  # no staging folder left behind
