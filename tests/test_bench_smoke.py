"""`kolite bench --quick` end to end on tiny stand-in artifacts: every contender runs and the results file holds
numbers (never strings) in the documented structure. Speeds are not asserted (they belong in the benchmark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from numbers import Number
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--quick", "--limit", "40", "--latency-texts", "5", "--no-install-size"]


def _run_bench(tmp_path: Path, seed: str, artifact: Path, source: Path, contenders: list[str]) -> dict:
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "kolite.cli", "bench", "--model", seed, "--artifact", str(artifact),
           "--source", str(source), "--out", str(out), "--contenders", *contenders, *SMALL]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / f"{seed}-quick.json").read_text(encoding="utf-8"))
    assert (out / f"{results['run_id']}.json").is_file()
    assert (out / f"{seed}-quick.md").read_text(encoding="utf-8").count("\n| ") >= len(results["contenders"])
    for plot in ("latency", "throughput", "accuracy-size"):
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


def _check_contender(result: dict, n_texts: int) -> None:
    assert "error" not in result, result.get("error")
    latency = result["latency_bs1"]["ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert result["throughput"]["n_texts"] == n_texts and result["throughput"]["texts_per_s"] > 0
    assert [row["batch_size"] for row in result["sweep"]] == [1, 8, 32]
    assert result["cold_start"]["seconds"] > 0 and result["rss_peak_mb"] > 0 and result["model_bytes"] > 0
    assert result["scores"]["n_scored"] == n_texts
    assert 0.0 <= result["scores"]["agreement"] <= 1.0


def test_quick_bench_sentiment_every_contender(tmp_path, tiny_artifact, standin_dir):
    from kolite.manifest import load_manifest

    artifact = tiny_artifact("000")
    variants = [f"kolite-{v}" for v in load_manifest(artifact).passed_variants if v != "fp16"]
    contenders = ["torch", "torch-longest", "pipeline", "optimum-int8", *variants]
    results = _run_bench(tmp_path, "000", artifact, standin_dir("000"), contenders)

    assert results["schema"] == "kolite-bench/1" and results["model"]["stand_in"] is True
    assert results["dataset"]["name"] == "nsmc-test" and results["dataset"]["n_texts"] == 40
    assert sorted(results["contenders"]) == sorted(contenders)
    for result in results["contenders"].values():
        _check_contender(result, 40)
        assert 0.0 <= result["scores"]["accuracy"] <= 1.0
    assert results["reference"] in ("torch", "torch-longest")
    assert results["contenders"][results["reference"]]["scores"]["agreement"] == 1.0
    env = results["environment"]
    assert env["threads"] == 2 and isinstance(env["vnni"], bool) and env["versions"]["onnxruntime"]
    limit = results["physical_limit"]
    assert limit["gemm"]["int8_peak_gops"] > 0 and limit["limit"]["texts_per_s"] > 0
    assert limit["limit"]["total_tokens"] >= 2 * 40  # at least [CLS] and [SEP] per text
    assert isinstance(results["install_size"]["torch"]["bytes"], Number)
    measured = {name: {k: v for k, v in r.items() if k != "describe"} for name, r in results["contenders"].items()}
    _no_numeric_strings({"contenders": measured, "limit": limit, "install": results["install_size"],
                         "settings": results["settings"], "dataset": results["dataset"]})


def test_quick_bench_ner_scores_entities(tmp_path, tiny_artifact, standin_dir):
    contenders = ["torch-longest", "pipeline", "kolite-int8"]
    results = _run_bench(tmp_path, "004", tiny_artifact("004"), standin_dir("004"), contenders)
    assert results["dataset"]["name"] == "klue-ner-dev"
    for result in results["contenders"].values():
        _check_contender(result, 40)
        assert 0.0 <= result["scores"]["entity_f1"] <= 1.0

    from kolite.cli import main

    summary = tmp_path / "summary"
    assert main(["bench", "--summary", str(tmp_path / "results" / "004-quick.json"), "--out", str(summary)]) == 0
    row = next(line for line in (summary / "summary.md").read_text().splitlines() if line.startswith("| 004 |"))
    int8 = results["contenders"]["kolite-int8"]
    assert f"| {int8['latency_bs1']['ms']['p50']:.2f} |" in row
    pipeline = results["contenders"]["pipeline"]
    assert f"{int8['throughput']['texts_per_s'] / pipeline['throughput']['texts_per_s']:.1f}×" in row


def test_quick_bench_custom_head_marks_peers_not_applicable(tmp_path, tiny_artifact, standin_dir):
    contenders = ["torch", "pipeline", "optimum-int8", "kolite-int8"]
    results = _run_bench(tmp_path, "003", tiny_artifact("003"), standin_dir("003"), contenders)
    assert sorted(results["contenders"]) == ["kolite-int8", "torch"]
    assert set(results["skipped"]) == {"pipeline", "optimum-int8"}
    assert results["dataset"]["labelled"] is False
    for result in results["contenders"].values():
        _check_contender(result, 40)
