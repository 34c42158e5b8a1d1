"""Pure parts of the benchmark harness: data readers, NER projection, scores, the physical-limit arithmetic."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from kolite_bench.datasets import load_dataset
from kolite_bench.metrics import classification_scores, ner_scores
from kolite_bench.ner import char_bio, spans_from_token_labels

_MARK = re.compile(r"<([^<>]+?):([A-Z]{2})>")


def _spans_from_comment(comment: str) -> tuple[str, list[tuple[int, int, str]]]:
    """KLUE's `##` line writes the sentence with inline <text:TAG> marks: an independent source of the spans."""
    text, spans, cursor = [], [], 0
    position = 0
    for match in _MARK.finditer(comment):
        plain = comment[cursor : match.start()]
        text.append(plain)
        position += len(plain)
        spans.append((position, position + len(match.group(1)), match.group(2)))
        text.append(match.group(1))
        position += len(match.group(1))
        cursor = match.end()
    text.append(comment[cursor:])
    return "".join(text), spans


def test_klue_reader_and_char_bio_reproduce_the_inline_marks(shared_data):
    data = load_dataset("klue-ner", shared_data / "data", limit=300)
    raw = (shared_data / "data" / "klue-ner" / "klue-ner-v1.1_dev.tsv").read_text(encoding="utf-8")
    comments = [line.split("\t", 1)[1] for line in raw.splitlines() if line.startswith("## klue-ner")][:300]
    assert len(comments) == len(data.texts) == 300
    for comment, text, gold in zip(comments, data.texts, data.labels, strict=True):
        marked_text, spans = _spans_from_comment(comment)
        assert marked_text == text
        assert char_bio(len(text), spans) == gold


def test_spans_from_token_labels_groups_bio_and_skips_special_tokens():
    offsets = [(0, 0), (0, 2), (2, 3), (4, 6), (7, 9), (9, 10), (0, 0)]
    labels = ["B-PS", "B-PS", "I-PS", "O", "B-LC", "I-OG", "O"]
    spans = spans_from_token_labels(labels, offsets)
    # I-OG after B-LC starts a new entity (type change), like the pipeline's "simple" aggregation.
    assert spans == [(0, 3, "PS"), (7, 9, "LC"), (9, 10, "OG")]
    assert char_bio(10, [*spans, (4, 6, "AF")])[4:6] == ["O", "O"]  # TTA-only tags are not scored on KLUE


def test_classification_scores_match_direct_formulas():
    rng = np.random.default_rng(0)
    gold, pred, ref = (rng.integers(0, 3, 500) for _ in range(3))
    scores = classification_scores(pred.tolist(), gold.tolist(), ref.tolist(), num_labels=3)
    assert scores["accuracy"] == pytest.approx(np.mean(pred == gold))
    assert scores["agreement"] == pytest.approx(np.mean(pred == ref))
    f1s = []
    for c in range(3):
        precision = np.sum((pred == c) & (gold == c)) / np.sum(pred == c)
        recall = np.sum((pred == c) & (gold == c)) / np.sum(gold == c)
        f1s.append(2 * precision * recall / (precision + recall))
    assert scores["macro_f1"] == pytest.approx(np.mean(f1s))
    partial = classification_scores(pred[:100].tolist(), gold.tolist(), ref.tolist(), num_labels=3)
    assert partial["n_scored"] == 100 and partial["accuracy"] == pytest.approx(np.mean(pred[:100] == gold[:100]))


def test_ner_scores_are_perfect_on_the_gold_spans(shared_data):
    data = load_dataset("klue-ner", shared_data / "data", limit=50)
    raw = (shared_data / "data" / "klue-ner" / "klue-ner-v1.1_dev.tsv").read_text(encoding="utf-8")
    comments = [line.split("\t", 1)[1] for line in raw.splitlines() if line.startswith("## klue-ner")][:50]
    gold_spans = [_spans_from_comment(c)[1] for c in comments]
    scores = ner_scores(data.texts, gold_spans, data.labels, gold_spans)
    assert scores["entity_f1"] == 1.0 and scores["agreement"] == 1.0
    dropped = [spans[1:] for spans in gold_spans]
    assert ner_scores(data.texts, dropped, data.labels, None)["entity_recall"] < 1.0


@pytest.mark.torch
def test_ops_per_token_of_the_graph_matches_the_architecture(tiny_artifact, standin_dir):
    from kolite.manifest import load_manifest
    from kolite_bench.limits import count_tokens, int8_ops_per_token

    artifact = tiny_artifact("000")
    config = json.loads((standin_dir("000") / "config.json").read_text(encoding="utf-8"))
    e, h, f, layers = (config[k] for k in ("embedding_size", "hidden_size", "intermediate_size", "num_hidden_layers"))
    head = h * h + h * len(config["id2label"])
    expected = 2 * ((e * h if e != h else 0) + layers * (4 * h * h + 2 * h * f) + head)
    assert int8_ops_per_token(artifact / "model.fp32.onnx")["fp32_gemm_ops_per_token"] == expected
    assert int8_ops_per_token(artifact / "model.int8.onnx")["int8_ops_per_token"] > 0
    manifest = load_manifest(artifact)
    assert count_tokens(artifact / manifest.tokenizer.file, ["", "영화 최고"], manifest.max_length) >= 4


def test_gemm_micro_benchmark_reports_positive_rates():
    from kolite_bench.gemm import run_gemm_benchmark

    result = run_gemm_benchmark(threads=1, shapes=[(16, 32, 32)], min_seconds=0.01)
    assert result["int8_peak_gops"] > 0 and result["shapes"][0]["fp32_gflops"] > 0


def test_variants_that_failed_their_gate_are_timed_only_when_asked(tiny_artifact, tmp_path):
    import shutil

    from kolite_bench.config import SEEDS, BenchConfig
    from kolite_bench.runner import plan_contenders

    artifact = tmp_path / "000"
    shutil.copytree(tiny_artifact("000"), artifact)
    manifest = json.loads((artifact / "manifest.json").read_text(encoding="utf-8"))
    manifest["variants"]["int8"]["status"] = "failed"
    (artifact / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    def plan(include_failed: bool) -> tuple[list[str], dict[str, str]]:
        config = BenchConfig(seed=SEEDS["000"], artifact=artifact, source="unused", source_kind="standin",
                             contenders=("kolite-int8", "kolite-fp32"), out_dir=tmp_path, include_failed=include_failed)
        return plan_contenders(config)

    run, skipped = plan(include_failed=False)
    assert run == ["kolite-fp32"] and "--include-failed" in skipped["kolite-int8"]
    run, skipped = plan(include_failed=True)
    assert run == ["kolite-int8", "kolite-fp32"] and not skipped


def test_the_crosschecks_openvino_sort_uses_real_token_counts_not_padded_ones():
    # Padding to the longest of one call over all texts made every length equal, so the "sorted" pass kept file order.
    from kolite_bench.crosscheck import _OpenVINO
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[PAD]": 0, "[UNK]": 1, "a": 2}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    fake = type("Fake", (), {"tokenizer": tokenizer})()
    assert _OpenVINO.lengths(fake, ["a a a", "a", "a a"]) == [3, 1, 2]


def test_the_crosscheck_compares_ner_outputs_token_by_token_and_puts_sorted_rows_back_in_text_order():
    # NER outputs are one [tokens, labels] array per text, of different lengths: compared per token, not per text.
    from kolite_bench.crosscheck import _agreement, _OpenVINO

    first = [np.array([[0.0, 1.0], [2.0, 0.5]]), np.array([[1.0, 0.0]])]
    second = [np.array([[0.0, 1.0], [0.1, 0.5]]), np.array([[1.0, 0.0]])]
    agreement = _agreement(first, second)
    assert (agreement["texts"], agreement["rows"], agreement["bitwise_identical_rows"]) == (2, 3, 2)
    assert agreement["label_agreement"] == pytest.approx(2 / 3)
    # The sorted pass runs the shortest first and must hand every text its own row back.
    fake = type("Fake", (), {"lengths": lambda self, texts: [len(t) for t in texts],
                             "_run": lambda self, batches: [np.array([len(t)]) for b in batches for t in b]})()
    rows = _OpenVINO.sorted_pass(fake, ["ccc", "a", "bb"], 2)
    assert [int(r[0]) for r in rows] == [3, 1, 2]


def test_the_error_curve_table_has_a_row_per_k_and_names_its_run():
    from kolite_bench.ner_error_curve import AGGREGATIONS, table

    spread = {"median": 0.9, "min": 0.8, "max": 1.0, "rounds": [0.8, 0.9, 1.0]}
    row = {"float_weight_fraction": 0.1, "tau": 0.09, "quantile_gap_error": 0.05, "max_gap_error": 0.06,
           "tau_pooled": 0.2, "unguarded_flips": 3, "own_speed_vs_k0": spread, "float_cost_ratio": spread,
           **{f"rerun_served_{a}": 0.25 for a in AGGREGATIONS},
           **{f"projected_guarded_speed_served_{a}_vs_unguarded_k0": spread for a in AGGREGATIONS}}
    results = {"rows": [{"k": 0, **row}, {"k": 4, **row}], "run_id": "ner-error-curve-X",
               "machine": {"cpu": "cpu", "cpus": 2, "commit": "abc"}, "load_average_before": [1.0],
               "load_average_after": [1.5], "tau_texts": {"count": 10}, "rerun_texts": 10, "speed_texts": 20}
    text = table(results)
    assert [line.split("|")[1].strip() for line in text.splitlines()[2:4]] == ["0", "4"]
    assert "25.0 % / 25.0 %" in text and "run ner-error-curve-X" in text and "commit abc" in text


def test_thread_cpu_counts_each_thread_on_its_own():
    import os
    import threading
    import time

    from kolite_bench.loadtest import thread_cpu_s

    seen: dict[str, int] = {}

    def spin() -> None:
        seen["tid"] = threading.get_native_id()
        started = time.thread_time()
        while time.thread_time() - started < 0.3:
            pass
        seen["done"] = 1
        time.sleep(0.5)  # stays alive while the test reads /proc

    worker = threading.Thread(target=spin)
    worker.start()
    while "done" not in seen:
        time.sleep(0.01)
    per_thread = thread_cpu_s(os.getpid())
    worker.join()
    me = os.getpid()  # keys are pid/thread id: a server's child processes count too (kolite serve --processes)
    assert per_thread[f"{me}/{seen['tid']}"] >= 0.2  # the spinning thread's own CPU, not the process's
    assert per_thread[f"{me}/{threading.get_native_id()}"] < sum(per_thread.values())


def test_the_serving_ceiling_reports_the_sorted_pass_beside_the_batches(tiny_artifact):
    from kolite_bench.loadtest import inference_ceiling

    texts = [f"리뷰 {i} " + "정말 좋았어요 " * (i % 7) for i in range(64)]
    ceiling = inference_ceiling(tiny_artifact("000"), texts, threads=1, batches=2)
    assert ceiling["texts_per_s_sorted"] > 0 and ceiling["texts_per_s_batch_32"] > 0
    assert ceiling["cpu_ms_per_text_batch_1"] > 0


def test_the_serving_table_has_a_row_per_round_and_server_and_marks_figures_an_old_file_lacks():
    from kolite_bench.results_tables import RENDERERS, RESULTS

    results = json.loads((RESULTS / "serve-ab-000-lanes-xeon.json").read_text(encoding="utf-8"))
    rows = [line for line in RENDERERS["serve-ab"](results).splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 2 * len(results["rounds"])
    first = results["rounds"][0]["this"]
    assert f"| 1 | this | {first['throughput_rps']:,.0f} | {first['served_over_offline']:.0%} | – |" in rows[1]


def test_the_physical_limit_counts_the_served_int8_graph_of_an_artifact_without_dynamic_int8():
    from kolite_bench.limits import limit_graph

    assert limit_graph({"fp32-opt": "opt", "int8-static": "static"}) == "static"
    assert limit_graph({"fp32": "plain", "int8": "dynamic"}) == "dynamic"
    assert limit_graph({"fp16": "gpu"}) is None


def test_range_study_table_has_a_row_per_method_and_served_reruns_for_ner():
    from kolite_bench.range_study import table

    row = {"tau": 0.1, "quantile_gap_error": 0.05, "max_gap_error": 0.06, "tau_pooled": 0.2, "quantile_abs_delta": 0.07,
           "max_abs_delta": 0.09, "unguarded_flips": 3, "rows": 1000, "rerun_fraction": 0.25,
           "rerun_served": {a: 0.5 for a in ("none", "simple", "first", "average", "max")}}
    results = {"task": "token-classification", "run_id": "range-study-X", "machine": {"cpu": "cpu", "cpus": 2,
               "commit": "abc"}, "tau_texts": {"count": 1000, "source": "held out"}, "rerun_texts": 1000,
               "rows": [{"spec": "percentile:99.999", **row}, {"spec": "minmax", **row}]}
    text = table(results)
    assert [line.split("|")[1].strip() for line in text.splitlines()[2:4]] == ["percentile 99.999", "minmax"]
    assert "50.0 % / 50.0 % / 50.0 % / 50.0 % / 50.0 %" in text and "run range-study-X" in text
    classes = table({**results, "task": "text-classification", "rows": [{"spec": "mse", **row}]})
    assert "served re-run" not in classes and "| mse | 0.100 (0.050 / 0.060) |" in classes


def test_the_latency_ab_table_has_a_row_per_pair_and_the_medians_of_its_ratios():
    from kolite_bench.latency_ab import table

    def process(p50, p99, mean, cores):
        return {"p50": p50, "p99": p99, "mean": mean, "n": 900, "other_work": {"cores": cores, "steal_cores": 0.0}}

    pairs = [{"pair": 0, "this": process(0.9, 3.0, 1.0, 0.01), "baseline": process(1.0, 2.5, 1.25, 0.02)},
             {"pair": 1, "this": process(0.8, 2.0, 1.0, 0.10), "baseline": process(1.0, 2.0, 1.0, 0.0)}]
    results = {"run_id": "latency-ab-X", "machine": {"cpu": "cpu", "logical_cores": 2}, "pairs": pairs,
               "settings": {"artifact": "/a/000-x", "variant": "int8-static", "texts": 300, "repeats": "3"},
               "this_over_baseline": {"p50": {"median": 0.85}, "p99": {"median": 1.1}, "mean": {"median": 0.9}}}
    text = table(results)
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert rows == ["| 1 | 1.00 / 2.50 / 1.25 | 0.90 / 3.00 / 1.00 | 0.900 | 1.200 | 0.800 |",
                    "| 2 | 1.00 / 2.00 / 1.00 | 0.80 / 2.00 / 1.00 | 0.800 | 1.000 | 1.000 |"]
    assert "other work 0.00–0.10 cores" in text and "p50 0.850, p99 1.100, mean 0.900" in text


def test_the_crosscheck_table_has_a_row_per_kolite_and_peer_pair_and_skips_peer_to_peer_ratios():
    from kolite_bench.crosscheck import table

    def ratio(value):
        return {"rounds": [value, value], "median": value, "min": value, "max": value}

    def pair(value):
        return {"sorted": ratio(value), "file_order": ratio(2 * value), "bs1_p50": ratio(3 * value)}

    load = {"before": 0.1, "after": 0.2, "other_work": {"cores": 0.01, "steal_cores": 0.0}}
    entry = {kind: {"load1": load} for kind in ("sorted", "file_order", "bs1")}
    results = {
        "run_id": "crosscheck-X", "machine": {"cpu": "cpu", "logical_cores": 2}, "busy_rounds": [],
        "settings": {"texts": 100, "offset": 0, "batch_size": 32, "bs1_texts": 10, "threads": 2},
        "rounds": [{"round": 0, "load1_start": 0.1, "kolite:a:int8-static": entry}],
        "ratios": {"kolite:a:int8-static / openvino-throughput:1": pair(1.0),
                   "kolite:a:int8-static / optimum-int8:2": pair(1.5),
                   "openvino-throughput:1 / optimum-int8:2": pair(9.0),
                   "optimum-int8:2 / kolite:a:int8-static": pair(0.5)},
    }
    rows = [line for line in table(results).splitlines() if line.startswith("| a:")]
    assert rows == ["| a:int8-static ÷ OpenVINO THROUGHPUT | **1.00×** (1.00 / 1.00) | **2.00×** (2.00 / 2.00) | "
                    "**3.00×** (3.00 / 3.00) |",
                    "| a:int8-static ÷ optimum int8 | **1.50×** (1.50 / 1.50) | **3.00×** (3.00 / 3.00) | "
                    "**4.50×** (4.50 / 4.50) |"]


def test_server_cpu_counts_the_child_processes_of_a_multi_process_server():
    import os
    import signal
    import subprocess
    import sys
    import time

    from kolite_bench.loadtest import _process_tree, _server_cpu_s, thread_cpu_s

    # A parent that starts a child which burns ~0.4 s of CPU, then both wait: the child's CPU belongs to the parent's
    # tree while it lives (kolite serve --processes N answers from children, serve_ab reads the parent's pid).
    script = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', "
              "'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.4: pass\\ntime.sleep(30)']); "
              "print(c.pid, flush=True); time.sleep(30)")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        deadline = time.monotonic() + 30
        while (_server_cpu_s(child) or 0) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _process_tree(parent.pid) == [parent.pid, child]
        assert _server_cpu_s(parent.pid) >= (_server_cpu_s(child) or 0) >= 0.4
        assert any(key.startswith(f"{child}/") for key in thread_cpu_s(parent.pid))
    finally:
        if child is not None:
            os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait()
