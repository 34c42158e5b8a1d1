"""The bench's per-round ratios and busy-round flags (``kolite_bench.report_speed``): computed round by round,
against OpenVINO's best mode in that same round."""

from __future__ import annotations

import pytest
from kolite_bench.report_speed import busy_rounds, round_ratios


def _contender(sorted_rounds, file_rounds, p50_rounds, loads):
    return {
        "latency_bs1": {"ms": {"p50": 1.0}, "spread": {"p50": {"rounds": p50_rounds}}},
        "throughput_rounds": {"sorted": {"rounds": sorted_rounds}, "file_order": {"rounds": file_rounds}},
        "round_order": [
            {"round": i, "load_average": {"before": [load], "after": [load]}} for i, load in enumerate(loads)
        ],
    }


RESULTS = {
    "environment": {"logical_cores": 2},
    "contenders": {
        "kolite-int8-static": _contender(
            [200.0, 100.0, 300.0], [150.0, 150.0, 150.0], [1.0, 2.0, 1.0], [0.5, 3.1, 1.0]
        ),
        "openvino-int8-throughput": _contender(
            [100.0, 200.0, 100.0], [100.0, 50.0, 300.0], [4.0, 1.0, 2.0], [0.4, 0.6, 2.5]
        ),
        "openvino-int8-latency": _contender(
            [150.0, 50.0, 200.0], [120.0, 60.0, 100.0], [2.0, 3.0, 1.5], [0.3, 0.2, 0.1]
        ),
    },
}


def test_ratios_are_taken_round_by_round_against_openvinos_best_mode_of_that_round():
    ratios = round_ratios(RESULTS, "kolite-int8-static")
    # sorted: best OpenVINO per round 150, 200, 200 → 200/150, 100/200, 300/200
    assert ratios["sorted"]["rounds"] == pytest.approx([1.333, 0.5, 1.5], abs=1e-3)
    assert ratios["sorted"]["median"] == pytest.approx(1.333, abs=1e-3)
    assert (ratios["sorted"]["min"], ratios["sorted"]["max"]) == pytest.approx((0.5, 1.5))
    # file order: best 120, 60, 300
    assert ratios["file_order"]["rounds"] == pytest.approx([1.25, 2.5, 0.5], abs=1e-3)
    # bs1: OpenVINO's lowest p50 per round (2, 1, 1.5) over kolite's (1, 2, 1): > 1 means kolite is faster
    assert ratios["bs1_p50"]["rounds"] == pytest.approx([2.0, 0.5, 1.5], abs=1e-3)


def test_no_openvino_means_no_ratios():
    alone = {**RESULTS, "contenders": {"kolite-int8-static": RESULTS["contenders"]["kolite-int8-static"]}}
    assert round_ratios(alone, "kolite-int8-static") == {}


def test_rounds_started_above_the_core_count_are_flagged_busy():
    busy = busy_rounds(RESULTS)
    assert busy == [
        {"contender": "kolite-int8-static", "round": 1, "load1": 3.1},
        {"contender": "openvino-int8-throughput", "round": 2, "load1": 2.5},
    ]


def _guarded_results():
    guarded = _contender([180.0, 90.0, 240.0], [120.0, 150.0, 135.0], [1.1, 2.0, 1.3], [0.5, 0.5, 0.5])
    guarded["throughput"] = {"counters": {"rows_checked": 1000, "rows_rerun": 25}}
    guarded["scores"] = {"agreement": 1.0}
    guarded["describe"] = {"guard": {"tau": 0.154}}
    plain = {**RESULTS["contenders"]["kolite-int8-static"], "scores": {"agreement": 0.9999}}
    return {"model": {"task": "text-classification"},
            "contenders": {"kolite-int8-static": plain, "kolite-int8-static-guarded": guarded}}


def test_guard_cost_is_taken_round_by_round_against_the_same_variant_unguarded():
    from kolite_bench.report_guard import guard_ratios

    ratios = guard_ratios(_guarded_results(), "kolite-int8-static-guarded", "kolite-int8-static")
    # sorted: 180/200, 90/100, 240/300; file order: 120/150, 150/150, 135/150; bs1 p50: 1.1/1, 2/2, 1.3/1
    assert ratios["sorted"]["rounds"] == pytest.approx([0.9, 0.9, 0.8])
    assert ratios["file_order"]["rounds"] == pytest.approx([0.8, 1.0, 0.9])
    assert ratios["bs1_p50"]["rounds"] == pytest.approx([1.1, 1.0, 1.3])
    assert ratios["bs1_p50"]["median"] == pytest.approx(1.1)
    assert ratios["rerun_fraction"] == pytest.approx(0.025)


def test_guard_table_states_each_bar_and_whether_it_is_met():
    from kolite_bench.report_guard import render_guard

    table = "\n".join(render_guard(_guarded_results()))
    assert "| int8-static | 0.154 | 99.99 % | 100.00 % | 2.50 % |" in table
    assert "sorted ≥ 0.9: yes; file_order ≥ 0.85: yes; bs1_p50 ≤ 1.1: yes" in table
    assert render_guard({**_guarded_results(), "contenders": {"kolite-int8-static": {}}}) == []


def test_every_int8_variant_is_benched_guarded_beside_unguarded():
    from kolite_bench.config import kolite_contenders, kolite_variant

    names = kolite_contenders()
    assert names.index("kolite-int8-static-guarded") == names.index("kolite-int8-static") + 1
    assert "kolite-fp32-guarded" not in names
    assert kolite_variant("kolite-int8-static-guarded") == ("int8-static", True)
    assert kolite_variant("kolite-fp32-opt") == ("fp32-opt", False)


def test_measured_other_work_flags_rounds_instead_of_the_load_average():
    # The load average counts the bench's own previous worker (2 threads on 2 cores): a round measured quiet is not
    # flagged however high it is; a round where other work or the hypervisor took over a quarter core is.
    measured = _contender([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [2.4, 2.4, 0.5])
    for step, (cores, steal) in zip(measured["round_order"], [(0.02, 0.0), (0.6, 0.0), (0.0, 0.3)], strict=True):
        step["other_work"] = {"cores": cores, "steal_cores": steal}
    busy = busy_rounds({"environment": {"logical_cores": 2}, "contenders": {"kolite-int8-static": measured}})
    assert [(b["round"], b["cores"], b["steal_cores"]) for b in busy] == [(1, 0.6, 0.0), (2, 0.0, 0.3)]


def test_other_work_is_machine_busy_cpu_less_the_workers_own_over_its_wall_time():
    from kolite_bench.env import machine_cpu_s, other_work

    before, after = {"busy": 100.0, "steal": 5.0}, {"busy": 121.0, "steal": 6.0}
    # 21 s of busy CPU in 10 s, 19 of them the worker's: others kept 0.2 cores busy; 1 s stolen = 0.1 cores
    assert other_work(before, after, 19.0, 10.0) == {"cores": 0.2, "steal_cores": 0.1}
    assert other_work(before, after, 25.0, 10.0)["cores"] == 0.0  # tick rounding never makes it negative
    assert other_work(None, after, 19.0, 10.0) is None
    now = machine_cpu_s()
    assert now is None or (now["busy"] > 0 and now["steal"] >= 0)


def test_the_second_harness_flags_a_round_by_measured_other_work_in_any_timed_segment():
    from kolite_bench.crosscheck import round_busy

    def entry(cores):
        segment = {"load1": {"before": 2.5, "after": 2.5, "other_work": {"cores": cores, "steal_cores": 0.0}}}
        return {"sorted": segment, "file_order": segment, "bs1": segment}

    quiet = {"load1_start": 2.6, "kolite": entry(0.05), "openvino": entry(0.0)}
    shared = {"load1_start": 0.3, "kolite": entry(0.05), "openvino": entry(0.4)}
    assert not round_busy(quiet, ["kolite", "openvino"])  # its own previous contender's load is not other work
    assert round_busy(shared, ["kolite", "openvino"])
    # results from before other work was measured: the load at the round's start, against the cores
    old = {"kolite": {k: {"load1": {"before": 1.0}} for k in ("sorted", "file_order", "bs1")}}
    assert round_busy({**old, "load1_start": 1000.0}, ["kolite"])
    assert not round_busy({**old, "load1_start": 0.0}, ["kolite"])
