"""The bench's speed rounds, the OpenVINO contender's wiring and the limit arithmetic, without running a model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from kolite.batching import plan_batches
from kolite_bench.cpu_peak import int8_ops_per_cycle, measure_clock_ghz, theoretical_peaks
from kolite_bench.limits import gemm_fraction, gemm_mix_ceiling, physical_limit
from kolite_bench.report_speed import openvino_best, speed_ratios
from kolite_bench.rounds import group_indices, plan_passes, rotated, summarize_rounds


def test_rotation_gives_every_contender_every_position():
    names = ["kolite-int8", "openvino-int8-latency", "optimum-int8"]
    orders = [rotated(names, r) for r in range(3)]
    assert orders[0] == names and orders[1] == ["openvino-int8-latency", "optimum-int8", "kolite-int8"]
    for name in names:
        assert sorted(order.index(name) for order in orders) == [0, 1, 2]


def test_round_groups_are_consecutive_and_wrap():
    assert group_indices(10, 4, 0) == [0, 1, 2, 3]
    assert group_indices(10, 4, 1) == [4, 5, 6, 7]
    assert group_indices(10, 4, 2) == [8, 9, 0, 1]
    assert group_indices(3, 1024, 5) == [0, 1, 2]  # a set smaller than a group: every round takes all of it


def test_passes_cover_the_group_once_with_kolites_own_sorted_batches():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 128, size=200).tolist()
    indices = group_indices(200, 70, 1)
    even, odd = plan_passes(indices, lengths, 32, 0), plan_passes(indices, lengths, 32, 1)
    assert [p["kind"] for p in even] == ["sorted", "file_order"]
    assert [p["kind"] for p in odd] == ["file_order", "sorted"]
    by_kind = {p["kind"]: p["batches"] for p in even}
    for batches in by_kind.values():
        assert sorted(i for batch in batches for i in batch) == sorted(indices)
        assert [len(b) for b in batches] == [32, 32, 6]
    assert by_kind["file_order"][0] == indices[:32]
    # The sorted batches are exactly the calls kolite's planner makes for these texts (longest first).
    planned = [[indices[int(j)] for j in call] for call in plan_batches([lengths[i] for i in indices], 32)]
    assert by_kind["sorted"] == planned
    longest = [max(lengths[i] for i in batch) for batch in by_kind["sorted"]]
    assert longest == sorted(longest, reverse=True)


def _round(r: int, p50: float, p99: float, sorted_tps: float, file_tps: float) -> dict:
    latency = {"n_texts": 4, "repeats": 1, "warmup": 1, "samples_ms": [p50] * 4,
               "ms": {"p50": p50, "p95": p99, "p99": p99, "mean": p50}}
    passes = {"sorted": {"n_texts": 64, "seconds": 64 / sorted_tps, "texts_per_s": sorted_tps, "batches": 2},
              "file_order": {"n_texts": 64, "seconds": 64 / file_tps, "texts_per_s": file_tps, "batches": 2}}
    return {"round": r, "position": r, "tokens": 1000, "latency_bs1": latency, "passes": passes,
            "load_average": {"before": [1.0], "after": [1.5]}}


def test_summary_keeps_every_round_so_a_slow_state_shows():
    rounds = [_round(0, 0.57, 1.7, 2200, 680), _round(1, 1.2, 3.0, 2100, 650), _round(2, 0.58, 1.8, 2300, 700)]
    summary = summarize_rounds(rounds)
    latency = summary["latency_bs1"]
    assert latency["ms"]["p50"] == pytest.approx(0.58) and latency["ms"]["p99"] == pytest.approx(1.8)
    assert latency["spread"]["p50"] == {"median": 0.58, "min": 0.57, "max": 1.2, "rounds": [0.57, 1.2, 0.58]}
    assert len(latency["samples_ms"]) == 3
    sorted_pass = summary["throughput_rounds"]["sorted"]
    assert sorted_pass["texts_per_s"] == pytest.approx(2200) and sorted_pass["rounds"] == [2200, 2100, 2300]
    assert sorted_pass["tokens"] == [1000] * 3 and sorted_pass["seconds"][0] == pytest.approx(64 / 2200)
    assert summary["throughput_rounds"]["file_order"]["min"] == pytest.approx(650)


def _results(contenders: dict, limit: dict | None = None) -> dict:
    return {"contenders": contenders, "physical_limit": limit, "settings": {"rounds": 3},
            "environment": {"logical_cores": 2}}


def test_ratios_are_against_openvinos_best_mode_per_column():
    def contender(p50: float, p99: float, sorted_tps: float, file_tps: float) -> dict:
        return summarize_rounds([_round(0, p50, p99, sorted_tps, file_tps)])

    ops_per_token = 300_000_000
    limit = {"limit": physical_limit(1000.0, ops_per_token, 10_000, 100), "gemm": {"int8_peak_gops": 1000.0},
             "theoretical": {"vnni_peak_gops": 2000.0, "amx_peak_gops": None}}
    results = _results({"kolite-int8": contender(0.6, 1.5, 2400, 900),
                        "openvino-int8-latency": contender(0.9, 2.0, 2000, 800),
                        "openvino-int8-throughput": contender(1.5, 3.0, 2800, 950),
                        "optimum-int8": contender(1.2, 2.5, 1500, 500),
                        "broken": {"error": "worker failed"}}, limit)
    assert openvino_best(results, "p50") == (0.9, "openvino-int8-latency")
    assert openvino_best(results, "sorted") == (2800, "openvino-int8-throughput")
    ratios = speed_ratios(results, "kolite-int8")
    assert ratios["bs1_vs_openvino"] == pytest.approx(0.9 / 0.6)
    assert ratios["bs1_vs_optimum"] == pytest.approx(2.0)
    assert ratios["p99_over_openvino"] == pytest.approx(1.5 / 2.0)
    assert ratios["sorted_vs_openvino"] == pytest.approx(2400 / 2800)
    assert ratios["file_order_vs_openvino"] == pytest.approx(900 / 950)
    # 1,000 real tokens × 0.3 G ops in 64/2400 s, over a 1,000 GOP/s peak (and a 2,000 GOP/s VNNI peak).
    useful_gops = ops_per_token * 1000 / (64 / 2400) / 1e9
    assert ratios["sorted_gemm_fraction"] == pytest.approx(useful_gops / 1000)
    assert ratios["sorted_vnni_fraction"] == pytest.approx(useful_gops / 2000)
    without_openvino = _results({"kolite-int8": results["contenders"]["kolite-int8"]})
    assert speed_ratios(without_openvino, "kolite-int8")["sorted_vs_openvino"] is None


def test_theoretical_peak_arithmetic():
    intel = int8_ops_per_cycle("GenuineIntel", 6, {"avx512_vnni", "amx_int8"})
    assert (intel.vnni_ops_per_cycle, intel.amx_ops_per_cycle) == (256, 2048)
    assert int8_ops_per_cycle("AuthenticAMD", 0x19, {"avx512_vnni"}).vnni_ops_per_cycle == 128  # Zen 4
    assert int8_ops_per_cycle("AuthenticAMD", 0x1A, {"avx512_vnni"}).vnni_ops_per_cycle == 256  # Zen 5
    assert int8_ops_per_cycle("GenuineIntel", 6, {"avx_vnni"}).vnni_ops_per_cycle == 128
    assert int8_ops_per_cycle("GenuineIntel", 6, {"avx2"}).vnni_ops_per_cycle is None
    peaks = theoretical_peaks(2, 2.5, intel)
    assert peaks["vnni_peak_gops"] == pytest.approx(2 * 2.5 * 256) and peaks["amx_peak_gops"] == pytest.approx(10240)
    assert theoretical_peaks(2, None, intel)["vnni_peak_gops"] is None
    assert gemm_fraction(100, 1000, 0.5, 0.4) == pytest.approx(100 * 1000 / 0.5 / 0.4e9)
    assert gemm_fraction(100, 1000, 0.5, None) is None


def test_gemm_mix_ceiling_is_the_time_weighted_speed_of_one_of_each_shape():
    """Two shapes of 1 and 3 G ops at 100 and 300 GOP/s take 10 + 10 ms: the mix runs 4 G ops in 20 ms = 200 GOP/s."""
    gemm = {"shapes": [
        {"m": 1000, "k": 500, "n": 1000, "int8_gops": 100.0},  # 2·1000·500·1000 = 1 G ops
        {"m": 1000, "k": 1500, "n": 1000, "int8_gops": 300.0},  # 3 G ops
        {"m": 10, "k": 10, "n": 10, "int8_gops": 0.0},  # not measured: left out
    ]}
    assert gemm_mix_ceiling(gemm) == {1000: pytest.approx(200.0)}
    assert gemm_mix_ceiling({"shapes": []}) == {}


def test_clock_probe_reads_a_plausible_frequency():
    import platform

    ghz = measure_clock_ghz(trials=2, iterations=200_000)
    if platform.machine() in ("x86_64", "AMD64") and platform.system() == "Linux":
        assert ghz is not None and 0.3 < ghz < 8.0  # a unit or latency-factor mistake lands far outside
    else:
        assert ghz is None


def test_openvino_rows_say_not_installed_with_the_install_command(tiny_artifact, tmp_path, monkeypatch):
    import kolite_bench.contenders.openvino_peer as openvino_peer
    from kolite_bench.config import SEEDS, BenchConfig
    from kolite_bench.runner import plan_contenders

    artifact = tmp_path / "000"
    shutil.copytree(tiny_artifact("000"), artifact)
    names = ("kolite-int8", "openvino-int8-latency", "openvino-int8-throughput")
    config = BenchConfig(seed=SEEDS["000"], artifact=artifact, source="unused", source_kind="standin",
                         contenders=names, out_dir=tmp_path)
    assert openvino_peer.openvino_missing() is None  # the dev lock pins both
    assert plan_contenders(config) == (list(names), {})
    monkeypatch.setattr(openvino_peer, "_version", lambda dist: None if dist == "nncf" else "1")
    run, skipped = plan_contenders(config)
    assert run == ["kolite-int8"]
    for name in names[1:]:
        assert skipped[name].startswith("not installed (nncf)") and "requirements/dev.txt" in skipped[name]


def test_kolite_contender_hands_the_bench_threads_to_a_data_parallel_keyword(monkeypatch):
    import kolite
    from kolite_bench.contenders.base import ContenderSpec
    from kolite_bench.contenders.kolite_runtime import KoliteContender

    seen: dict = {}

    def load_with_parallel(path, variant="auto", device="cpu", threads=None, *, parallel: int | None = None):
        seen.update(threads=threads, parallel=parallel)

    def load_with_switch(path, variant="auto", device="cpu", threads=None, *, data_parallel: bool = False,
                         sessions: bool = False):
        seen.update(threads=threads, sessions=sessions)

    spec = ContenderSpec(name="kolite-int8", task="text-classification", source="-", artifact="-", threads=3,
                         options={"variant": "int8"})
    monkeypatch.setattr(kolite, "load", load_with_parallel)
    contender = KoliteContender(spec)
    contender.load()
    assert seen == {"threads": 3, "parallel": 3} and contender.parallel_kwarg == "parallel"
    seen.clear()
    monkeypatch.setattr(kolite, "load", load_with_switch)
    contender.load()
    assert seen == {"threads": 3, "sessions": True}


def test_kolite_contender_sets_the_guard_explicitly_and_refuses_a_guarded_row_without_one(monkeypatch):
    import kolite
    from kolite_bench.contenders.base import ContenderSpec
    from kolite_bench.contenders.kolite_runtime import KoliteContender

    seen: dict = {}

    def load_with_guard(path, variant="auto", device="cpu", threads=None, *, guard="auto"):
        seen.update(guard=guard)

    def load_without_guard(path, variant="auto", device="cpu", threads=None):
        seen.update(loaded=True)

    def spec(guard: bool) -> ContenderSpec:
        return ContenderSpec(name="kolite-int8-guarded" if guard else "kolite-int8", task="text-classification",
                             source="-", artifact="-", threads=2, options={"variant": "int8", "guard": guard})

    monkeypatch.setattr(kolite, "load", load_with_guard)
    KoliteContender(spec(False)).load()
    assert seen == {"guard": False}  # never the artifact's auto default
    KoliteContender(spec(True)).load()
    assert seen == {"guard": True}
    seen.clear()
    monkeypatch.setattr(kolite, "load", load_without_guard)
    KoliteContender(spec(False)).load()  # an older kolite (the serving A/B's baseline) still loads unguarded
    assert seen == {"loaded": True}
    with pytest.raises(RuntimeError, match="no fidelity guard"):
        KoliteContender(spec(True)).load()


def test_calibration_texts_never_come_from_the_scored_file(shared_data):
    from kolite_bench.calibration import calibration_texts

    source, texts = calibration_texts("nsmc", shared_data / "data", 300)
    assert source == "nsmc-train" and len(texts) == 300 and all(t.strip() for t in texts)
    assert calibration_texts("kote", shared_data / "data", 50)[0] == "kote-val"
    assert calibration_texts("klue-ner", shared_data / "data", 10)[0] == "nsmc-train"
    with pytest.raises(ValueError, match="no calibration source"):
        calibration_texts("unknown", shared_data / "data")


def test_ner_scores_report_the_entity_f1_change_against_the_original():
    from kolite_bench.metrics import ner_scores

    texts = ["홍길동 서울", "부산"]
    gold = [["B-PS", "I-PS", "I-PS", "O", "B-LC", "I-LC"], ["B-LC", "I-LC"]]
    original = [[(0, 3, "PS"), (4, 6, "LC")], [(0, 2, "LC")]]
    worse = [[(0, 3, "PS")], [(0, 2, "LC")]]
    assert ner_scores(texts, original, gold, original)["delta_entity_f1_pt"] == 0.0
    delta = ner_scores(texts, worse, gold, original)["delta_entity_f1_pt"]
    assert delta == pytest.approx((0.8 - 1.0) * 100)  # F1 of 2 of 3 entities found, none wrong: 0.8

