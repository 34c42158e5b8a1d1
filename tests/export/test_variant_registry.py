"""One owner per variant: a throwaway variant added through one registration is exported, gated, offered by both
CLIs and the bench, listed by `kolite info` and loadable — with no other file touched."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytestmark = pytest.mark.torch


def _build_copy(ctx, target, exclude_nodes=()):
    shutil.copyfile(ctx.fp32_path, target)
    return {"copied_from": "fp32"}


@pytest.fixture
def throwaway():
    from kolite_export.gates import Gate
    from kolite_export.variants import VariantSpec, register, unregister
    from kolite_export.variants.spec import CPU

    spec = register(
        VariantSpec("fp32-copy", "fp32", _build_copy, Gate(atol=1e-4), CPU, rank=45, summary="a test-only copy")
    )
    yield spec
    unregister(spec.name)


def test_a_registered_variant_is_exported_gated_listed_and_loadable(throwaway, standin_dir, tmp_path, capsys):
    import kolite
    from kolite.cli import main
    from kolite_bench.config import all_contenders

    out = tmp_path / "art"
    argv = ["export", str(standin_dir("000")), "--out", str(out), "--variants", "fp32,fp32-copy"]
    assert main([*argv, "--validation-size", "16"]) == 0
    assert any(line.startswith("fp32-copy ") and "passed" in line for line in capsys.readouterr().out.splitlines())

    manifest = kolite.load_manifest(out)
    copy = manifest.variants["fp32-copy"]
    assert copy.passed and copy.rank == 45 and copy.recipe == {"copied_from": "fp32"}
    assert copy.validation["max_abs_logit_diff"] <= 1e-4 and copy.validation["texts"] == 16

    assert main(["info", str(out)]) == 0
    assert any(line.split()[:1] == ["fp32-copy"] for line in capsys.readouterr().out.splitlines())

    model = kolite.load(out, variant="fp32-copy")
    reference = kolite.load(out, variant="fp32")
    texts = ["영화 정말 재밌어요", "별로", ""]
    np.testing.assert_array_equal(model.logits(texts), reference.logits(texts))

    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "fp32-copy: a test-only copy" in " ".join(capsys.readouterr().out.split())
    assert "kolite-fp32-copy" in all_contenders()


def test_unknown_and_duplicate_registrations_are_refused(throwaway):
    from kolite_export.gates import Gate
    from kolite_export.variants import VariantSpec, register

    with pytest.raises(ValueError, match="already registered"):
        register(throwaway)
    with pytest.raises(ValueError, match="precision 'int4'"):
        VariantSpec("int4", "int4", _build_copy, Gate(), ("CPUExecutionProvider",))


def test_manifest_ranks_order_auto_per_device(tiny_artifact):
    """The ranks export writes order auto on each device: batch-invariant int8 first on CPU, fp16 on CUDA; the
    runtime's own table only serves 1.0 manifests, which carry no ranks."""
    import kolite
    from kolite.api import auto_candidates
    from kolite.providers import cpu_device, resolve_device
    from kolite_export.variants import VARIANTS

    expected = {"CPUExecutionProvider": ["int8-static", "int8", "fp32-opt", "fp32"],
                "CUDAExecutionProvider": ["fp16", "fp32-opt", "fp32"]}
    for provider, order in expected.items():
        by_rank = [n for n in sorted(VARIANTS, key=lambda n: VARIANTS[n].rank) if provider in VARIANTS[n].providers]
        assert by_rank[: len(order)] == order
    manifest = kolite.load_manifest(tiny_artifact("000"))
    assert manifest.schema_version == kolite.manifest.SCHEMA_VERSION
    assert {name: v.rank for name, v in manifest.variants.items()} == {n: VARIANTS[n].rank for n in manifest.variants}
    assert [v.name for v in auto_candidates(manifest, cpu_device())] == ["int8-static", "int8", "fp32-opt", "fp32"]
    cuda = resolve_device("cuda", available=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert [v.name for v in auto_candidates(manifest, cuda)] == ["fp32-opt", "fp32"]  # no fp16 in the tiny artifact


def test_a_1_0_manifest_still_loads(tiny_artifact, tmp_path):
    import json

    import kolite

    folder = shutil.copytree(tiny_artifact("000"), tmp_path / "old")
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    data["schema_version"] = "1.0"
    for variant in data["variants"].values():
        del variant["rank"], variant["cpu_features"]
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    manifest = kolite.load_manifest(folder)
    assert all(v.rank is None and v.cpu_features == () for v in manifest.variants.values())
    data["schema_version"] = "1.7"  # a newer minor version: fields this reader does not know are ignored
    data["variants"]["fp32"]["from_the_future"] = True
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    assert kolite.load(folder, variant="fp32").variant.name == "fp32"
