"""`kolite bench --quick` end to end on tiny stand-in artifacts: every contender (OpenVINO's two modes included) runs
in rotated rounds and the results file holds numbers (never strings) in the documented structure. Speeds are not
asserted (they belong in the benchmark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from numbers import Number
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--quick", "--limit", "40", "--latency-texts", "5", "--no-install-size", "--rounds", "2"]
OPENVINO = ["openvino-int8-latency", "openvino-int8-throughput"]


def _run_bench(tmp_path: Path, seed: str, artifact: Path, source: Path, contenders: list[str]) -> dict:
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "kolite.cli", "bench", "--model", seed, "--artifact", str(artifact),
           "--source", str(source), "--out", str(out), "--contenders", *contenders, *SMALL]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / f"{seed}-quick.json").read_text(encoding="utf-8"))
    assert (out / f"{results['run_id']}.json").is_file()
    assert (out / f"{seed}-quick.md").read_text(encoding="utf-8").count("\n| ") >= len(results["contenders"])
    for plot in ("latency", "throughput", "bs32", "accuracy-size"):
        assert (out / "plots" / f"{seed}-quick-{plot}.png").stat().st_size > 1000
    return results


def _no_numeric_strings(value: object, path: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _no_numeric_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value[:50]):
            _no_numeric_strings(item, f"{path}[{i}]")
    elif isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return
        raise AssertionError(f"{path} holds the number {value!r} as a string")


def _check_contender(result: dict, n_texts: int, names: list[str]) -> None:
    assert "error" not in result, result.get("error")
    latency = result["latency_bs1"]
    assert 0 < latency["ms"]["p50"] <= latency["ms"]["p95"] <= latency["ms"]["p99"]
    assert len(latency["spread"]["p50"]["rounds"]) == 2 and len(latency["samples_ms"]) == 2
    assert all(len(samples) == 5 * 2 for samples in latency["samples_ms"])  # 5 texts × 2 timed passes per round
    for kind in ("sorted", "file_order"):
        passes = result["throughput_rounds"][kind]
        assert passes["n_texts"] == [n_texts, n_texts] and passes["min"] <= passes["texts_per_s"] <= passes["max"]
        assert all(t >= 2 * n_texts for t in passes["tokens"])  # at least [CLS] and [SEP] per text
    # Rotated: the contender that ran at position p in round 0 runs at p - 1 (wrapping) in round 1.
    positions = [step["position"] for step in result["round_order"]]
    assert positions[1] == (positions[0] - 1) % len(names)
    assert result["throughput"]["n_texts"] == n_texts and result["throughput"]["texts_per_s"] > 0
    assert [row["batch_size"] for row in result["sweep"]] == [1, 8, 32]
    assert result["cold_start"]["seconds"] > 0 and result["rss_peak_mb"] > 0 and result["model_bytes"] > 0
    assert result["scores"]["n_scored"] == n_texts


def _check_openvino(results: dict) -> None:
    for name, hint in zip(OPENVINO, ("LATENCY", "THROUGHPUT"), strict=True):
        if name not in results["contenders"]:
            continue
        described = results["contenders"][name]["describe"]
        assert described["hint"] == hint and described["plugin"]["INFERENCE_NUM_THREADS"] == 2
        assert "300 calibration texts" in described["quantization"]
        if hint == "LATENCY":
            assert described["plugin"]["NUM_STREAMS"] == 1


def test_quick_bench_sentiment_every_contender(tmp_path, tiny_artifact, standin_dir):
    from kolite.manifest import load_manifest

    artifact = tiny_artifact("000")
    variants = [f"kolite-{v}" for v in load_manifest(artifact).passed_variants if v != "fp16"]
    contenders = ["torch", "torch-longest", "pipeline", "optimum-int8", *OPENVINO, *variants,
                  "kolite-int8-static-guarded"]
    results = _run_bench(tmp_path, "000", artifact, standin_dir("000"), contenders)
    guarded = results["contenders"]["kolite-int8-static-guarded"]
    assert guarded["describe"]["guard"]["tau"] > 0
    assert results["contenders"]["kolite-int8-static"]["describe"]["guard"] is None  # explicitly off, not auto
    counters = guarded["throughput"]["counters"]
    assert counters["rows_checked"] == 40 and 0 <= counters["rows_rerun"] <= 40
    assert results["guard_ratios"]["kolite-int8-static-guarded"]["sorted"]["median"] > 0
    assert "#### Fidelity guard" in (tmp_path / "results" / "000-quick.md").read_text(encoding="utf-8")

    assert results["schema"] == "kolite-bench/2" and results["model"]["stand_in"] is True
    assert results["dataset"]["name"] == "nsmc-test" and results["dataset"]["n_texts"] == 40
    assert sorted(results["contenders"]) == sorted(contenders)
    for result in results["contenders"].values():
        _check_contender(result, 40, contenders)
        assert 0.0 <= result["scores"]["accuracy"] <= 1.0 and 0.0 <= result["scores"]["agreement"] <= 1.0
    _check_openvino(results)
    assert results["reference"] in ("torch", "torch-longest")
    assert results["contenders"][results["reference"]]["scores"]["agreement"] == 1.0
    env = results["environment"]
    assert env["threads"] == 2 and isinstance(env["vnni"], bool) and env["versions"]["onnxruntime"]
    limit = results["physical_limit"]
    assert limit["gemm"]["int8_peak_gops"] > 0 and limit["limit"]["texts_per_s"] > 0
    assert sorted(limit["gemm_by_threads"]) == ["1", "2"] and limit["gemm"]["threads"] == 2
    assert limit["limit"]["total_tokens"] >= 2 * 40  # at least [CLS] and [SEP] per text
    theoretical = limit["theoretical"]
    if env["vnni"] and theoretical["ghz"]:
        assert theoretical["vnni_peak_gops"] == pytest.approx(
            theoretical["cores"] * theoretical["ghz"] * theoretical["vnni_ops_per_cycle"])
        assert limit["limit_vnni"]["texts_per_s"] > 0
    assert isinstance(results["install_size"]["torch"]["bytes"], Number)
    measured = {name: {k: v for k, v in r.items() if k != "describe"} for name, r in results["contenders"].items()}
    _no_numeric_strings({"contenders": measured, "limit": limit, "install": results["install_size"],
                         "settings": results["settings"], "dataset": results["dataset"]})


def test_quick_bench_ner_scores_entities(tmp_path, tiny_artifact, standin_dir):
    contenders = ["torch-longest", "pipeline", "openvino-int8-throughput", "kolite-int8"]
    results = _run_bench(tmp_path, "004", tiny_artifact("004"), standin_dir("004"), contenders)
    assert results["dataset"]["name"] == "klue-ner-dev"
    for result in results["contenders"].values():
        _check_contender(result, 40, contenders)
        assert 0.0 <= result["scores"]["entity_f1"] <= 1.0 and "delta_entity_f1_pt" in result["scores"]
    _check_openvino(results)

    from kolite.cli import main

    summary = tmp_path / "summary"
    assert main(["bench", "--summary", str(tmp_path / "results" / "004-quick.json"), "--out", str(summary)]) == 0
    row = next(line for line in (summary / "summary.md").read_text().splitlines() if line.startswith("| 004 |"))
    int8 = results["contenders"]["kolite-int8"]
    p50_rounds = " / ".join(f"{v:.2f}" for v in int8["latency_bs1"]["spread"]["p50"]["rounds"])
    assert f"| {int8['latency_bs1']['ms']['p50']:.2f} ({p50_rounds}) |" in row
    pipeline = results["contenders"]["pipeline"]
    assert f"{int8['throughput']['texts_per_s'] / pipeline['throughput']['texts_per_s']:.2f}×" in row
    openvino = results["contenders"]["openvino-int8-throughput"]["throughput_rounds"]["sorted"]["texts_per_s"]
    assert f"{int8['throughput_rounds']['sorted']['texts_per_s'] / openvino:.2f}×" in row


def test_quick_bench_custom_head_marks_peers_not_applicable(tmp_path, tiny_artifact, standin_dir):
    # OpenVINO converts the custom module itself (kolite_export's layout), so it runs where optimum cannot.
    contenders = ["torch", "pipeline", "optimum-int8", "openvino-int8-latency", "kolite-int8"]
    results = _run_bench(tmp_path, "003", tiny_artifact("003"), standin_dir("003"), contenders)
    assert sorted(results["contenders"]) == ["kolite-int8", "openvino-int8-latency", "torch"]
    assert set(results["skipped"]) == {"pipeline", "optimum-int8"}
    assert results["dataset"]["labelled"] is False
    ran = ["torch", "openvino-int8-latency", "kolite-int8"]
    for result in results["contenders"].values():
        _check_contender(result, 40, ran)
        assert 0.0 <= result["scores"]["agreement"] <= 1.0
