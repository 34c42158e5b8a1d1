"""The CUDA check's dry run (CI has no GPU): payload made here from tiny artifacts, then every step of the check on
CPU up to the first CUDA call — fidelity against PyTorch, speed passes, the torch peer — and its results table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def payload(tmp_path_factory, tiny_artifact, standin_dir, shared_data) -> Path:
    from kolite_bench.gpu_payload import make_seed_payload

    out = tmp_path_factory.mktemp("gpu-payload")
    for seed in ("000", "004"):
        made = make_seed_payload(seed, tiny_artifact(seed), standin_dir(seed), shared_data / "data", out, count=48)
        assert made["texts"] == 48
    return out


def test_payload_holds_references_on_kolites_own_token_ids(payload: Path) -> None:
    from kolite_bench.gpu_check import reference_outputs

    texts, reference = reference_outputs(payload, "004")
    assert len(texts) == len(reference) == 48
    assert all(r.ndim == 2 for r in reference)  # [tokens, labels] per sentence
    assert (payload / "000" / "torch" / "model.safetensors").is_file()
    assert {p.name for p in (payload / "000" / "artifact").glob("model.*.onnx")} >= {"model.int8-static.onnx",
                                                                                   "model.fp32-opt.onnx"}


def test_dry_run_measures_every_engine_on_cpu(payload: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh"), "dry-run", "--payload", str(payload), "--out", str(out),
         "--texts", "48", "--bs1-texts", "4", "--batch-sizes", "8,16", "--repeats", "1"],
        capture_output=True, text=True, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin",
                                             "KOLITE_SHARED": str(REPO.parent / "shared")}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["environment"]["dry_run"] is True and "no number here is a GPU number" in results["note"]
    for seed in ("000", "004"):
        data = results["seeds"][seed]
        fp32 = data["variants"]["fp32-opt"]
        assert fp32["device"] == "cpu"
        # fp32 against PyTorch fp32 on the same ids: same labels, float rounding only.
        assert fp32["fidelity"]["label_agreement"] == 1.0
        assert fp32["fidelity"]["max_abs_logit_delta"] < 1e-3
        assert data["variants"]["fp16"] == {"skipped": "not in the payload"}  # tiny artifacts have no fp16
        assert set(fp32["speed"]) >= {"bs1", "bs8_texts_per_s", "bs16_texts_per_s"}
        assert data["cpu"]["variant"] == "int8-static"
        assert data["torch"]["fidelity"]["label_agreement"] == 1.0
    ner = results["seeds"]["004"]["variants"]["fp32-opt"]["fidelity"]
    assert all(ner[f"entity_agreement_{a}"] == 1.0 for a in ("none", "simple", "first", "average", "max"))
    assert "| 004 | kolite fp32-opt (cpu)" in proc.stdout


def test_fidelity_counts_a_flipped_label() -> None:
    from kolite_bench.gpu_check import fidelity

    class Fake:  # a classifier whose second text's logits are flipped against the reference
        def encode(self, texts):
            return texts

        def run(self, encoded, batch_size):
            return [np.array([1.0, 0.0], dtype=np.float32) for _ in encoded]

    reference = [np.array([1.0, 0.0], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)]
    numbers = fidelity(Fake(), ["a", "b"], reference, batch_size=2)
    assert numbers["label_flips"] == 1 and numbers["label_agreement"] == 0.5
    assert numbers["max_abs_logit_delta"] == 1.0


def test_docs_tables_are_rendered_from_the_committed_results() -> None:
    from kolite_bench.results_tables import MARKER, PAGES, render_page

    kinds = {}
    for name in PAGES:
        page = (REPO / name).read_text(encoding="utf-8")
        for match in MARKER.finditer(page):
            kinds.setdefault(match["kind"], []).append(name)
        assert render_page(page) == page, f"{name} drifted: python -m kolite_bench.results_tables {name}"
    assert kinds["gpu"].count("docs/guides/gpu.md") == 3 and "README.md" in kinds["gpu"]


def test_an_unknown_results_table_kind_is_a_clear_error() -> None:
    from kolite_bench.results_tables import render_page

    with pytest.raises(ValueError, match="unknown results table kind 'nope'"):
        render_page("<!-- nope-table: x -->\nold\n<!-- /nope-table -->\n")


@pytest.mark.parametrize("kind, run", [("guard-cost", "000-20261204T185508Z"), ("guard", "guard-000"),
                                       ("speed-lead", "000-20261204T185508Z"), ("guard-rss", "guard-rss-000")])
def test_a_rendered_results_table_keeps_its_header_row(kind: str, run: str) -> None:
    from kolite_bench.results_tables import render_page

    body = render_page(f"<!-- {kind}-table: {run} -->\n<!-- /{kind}-table -->\n").splitlines()[1:3]
    assert body[0].startswith(("| variant |", "| contender |", "| artifact |")) and set(body[1]) <= set("|-: "), body
