"""``kolite export`` on bad input: one clear error line, a non-zero exit, nothing half-written in --out."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch


def _run(capsys, *argv: str) -> tuple[int, list[str]]:
    from kolite.cli import main

    code = main(["export", *argv])
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[kolite export]")]
    return code, err


def _assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert leftovers == []


def test_folder_of_no_known_layout(tmp_path, capsys):
    source = tmp_path / "random"
    source.mkdir()
    (source / "weights.npy").write_bytes(b"\x00" * 16)
    out = tmp_path / "art"
    code, err = _run(capsys, str(source), "--out", str(out))
    assert code == 2 and len(err) == 1
    assert "no known checkpoint layout" in err[0] and "weights.npy" in err[0]
    _assert_nothing_written(out)


@pytest.mark.parametrize(("seed", "weights"), [("000", "pytorch_model.bin"), ("003", "best.pt")])
def test_corrupt_checkpoint(standin_dir, tmp_path, capsys, seed, weights):
    source = tmp_path / "corrupt"
    shutil.copytree(standin_dir(seed), source)
    (source / weights).write_bytes(b"this is not a torch checkpoint")
    out = tmp_path / "art"
    code, err = _run(capsys, str(source), "--out", str(out))
    assert code == 2 and len(err) == 1
    assert "cannot load" in err[0] and weights in err[0]
    _assert_nothing_written(out)


@pytest.mark.parametrize(("seed", "tokenizer_dir"), [("000", "."), ("003", "tokenizer")])
def test_missing_tokenizer(standin_dir, tmp_path, capsys, seed, tokenizer_dir):
    source = tmp_path / "notok"
    shutil.copytree(standin_dir(seed), source)
    for name in ("tokenizer.json", "vocab.txt"):
        (source / tokenizer_dir / name).unlink()
    out = tmp_path / "art"
    code, err = _run(capsys, str(source), "--out", str(out))
    assert code == 2 and len(err) == 1 and "no tokenizer" in err[0]
    _assert_nothing_written(out)


def test_unknown_hub_id_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "art"
    code, err = _run(capsys, "nobody/no-such-model", "--out", str(out))
    assert code == 2 and len(err) == 1
    assert "nobody/no-such-model" in err[0] and "local checkpoint folder" in err[0]
    _assert_nothing_written(out)


def test_a_failed_export_leaves_the_previous_artifact_untouched(tiny_artifact, standin_dir, tmp_path, capsys):
    out = tmp_path / "art"
    shutil.copytree(tiny_artifact("000"), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    source = tmp_path / "corrupt"
    shutil.copytree(standin_dir("000"), source)
    (source / "pytorch_model.bin").write_bytes(b"garbage")
    code, _ = _run(capsys, str(source), "--out", str(out), "--force")
    assert code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_variant_failing_its_gate_is_written_failed_and_exits_1(standin_dir, tmp_path, capsys, monkeypatch):
    from dataclasses import replace

    from kolite.manifest import load_manifest
    from kolite_export.gates import Gate
    from kolite_export.variants import VARIANTS

    # An impossible gate stands for a real accuracy failure.
    monkeypatch.setitem(VARIANTS, "int8", replace(VARIANTS["int8"], gate=Gate(min_label_agreement=1.01)))
    out = tmp_path / "art"
    code, err = _run(
        capsys,
        *(str(standin_dir("000")), "--out", str(out), "--variants", "fp32,int8", "--validation-size", "16"),
        "--no-repair",
    )
    assert code == 1
    assert any("int8 FAILED" in line and "label agreement" in line for line in err)
    manifest = load_manifest(out)
    assert manifest.variants["fp32"].passed
    assert manifest.variants["int8"].status == "failed"
    assert manifest.variants["int8"].validation["label_agreement"] <= 1.0


def test_success_prints_a_table_of_variants(standin_dir, tmp_path, capsys):
    from kolite.cli import main

    out = tmp_path / "art"
    assert (
        main(
            ["export", str(standin_dir("004")), "--out", str(out), "--variants", "fp32,int8", "--validation-size", "48"]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "variant" in table and "entity agr" in table
    assert any(line.startswith("int8 ") and "passed" in line for line in table.splitlines())


def test_unknown_variant_name(standin_dir, tmp_path, capsys):
    out = tmp_path / "art"
    code, err = _run(capsys, str(standin_dir("000")), "--out", str(out), "--variants", "fp32,int4")
    assert code == 2 and len(err) == 1 and "int4" in err[0]
    _assert_nothing_written(out)


def test_all_seeds_offline_exports_from_stand_ins(standin_dir, tmp_path, capsys, monkeypatch):
    from kolite.cli import main
    from kolite.manifest import load_manifest

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("KOLITE_CACHE", str(standin_dir("004").parents[3]))  # <repo>/.cache: reuse the vocabulary
    argv = ["export", "--all-seeds", "--size", "tiny", "--seeds", "004", "--out-dir", str(tmp_path)]
    assert main([*argv, "--variants", "fp32", "--validation-size", "8"]) == 0
    manifest = load_manifest(tmp_path / "004-koelectra-small-v3-modu-ner")
    assert manifest.name == "004-koelectra-small-v3-modu-ner"
    assert manifest.source["layout"] == "electra-token-classification"
    assert "offline, using the stand-in" in capsys.readouterr().err


def test_zoo_lists_the_five_seeds():
    from kolite_export.catalogue import SEEDS
    from kolite_export.layouts import LAYOUTS

    assert list(SEEDS) == ["000", "001", "002", "003", "004"]
    assert SEEDS["000"].hub_id == "daekeun-ml/koelectra-small-v3-nsmc"
    assert SEEDS["004"].hub_id == "Leo97/KoELECTRA-small-v3-modu-ner" and len(SEEDS["004"].labels) == 31
    assert SEEDS["003"].hub_id is None and SEEDS["003"].labels == ("사실형", "추론형", "예측형", "대화형")
    assert all(seed.layout in LAYOUTS for seed in SEEDS.values())
