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
