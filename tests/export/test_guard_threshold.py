"""τ for the fidelity guard (``kolite_export.guard_threshold``): measured on the error of the gaps a decision
reads (top label to its rivals), never above the per-logit bound the pooled-word checks keep."""

from __future__ import annotations

import numpy as np
import pytest


def test_gap_errors_read_the_runner_up_and_near_rivals_only():
    from kolite_export.guard_threshold import _gap_errors

    int8 = np.array([[3.0, 2.9, -5.0, 2.0], [0.0, 4.0, 3.5, -9.0]])
    float_ = np.array([[3.1, 2.9, -2.0, 2.0], [0.0, 4.0, 3.4, -8.0]])
    # row 0: top 0; runner-up 1 (gap 0.1 → 0.2), label 3 within the window (1.0 → 1.1), label 2 far away
    # row 1: top 1; runner-up 2 (0.5 → 0.6), the rest outside a window of 1.5
    errors = _gap_errors(int8, float_, window=1.5)
    assert sorted(np.round(errors, 6).tolist()) == [0.1, 0.1, 0.1]
    assert _gap_errors(np.zeros((2, 1)), np.zeros((2, 1)), 1.0).size == 0  # one label: nothing to flip to


@pytest.mark.parametrize("seed", ["000", "004"])
def test_tau_covers_every_flip_it_measured_and_stays_under_the_per_logit_bound(tiny_artifact, shared_data, seed):
    import json

    from kolite.guard import decision_margins
    from kolite_export.guard_threshold import GUARD_SAFETY, _gap_errors, measure_guard
    from kolite_export.validation import runtime_sequences, served_outputs
    from kolite_export.validation_data import load_validation_set

    artifact = tiny_artifact(seed)
    manifest = json.loads((artifact / "manifest.json").read_text(encoding="utf-8"))
    data = "nsmc" if seed == "000" else "klue-ner"
    texts = load_validation_set(data, 200, shared_data).texts
    sequences = runtime_sequences(artifact / "tokenizer.json", manifest["max_length"], texts)
    int8_graph = artifact / manifest["variants"]["int8-static"]["file"]
    float_graph = artifact / manifest["variants"]["fp32-opt"]["file"]
    numbers = measure_guard(int8_graph, float_graph, sequences, manifest["pad_token_id"])

    quantized = served_outputs(int8_graph, sequences, manifest["pad_token_id"])
    reference = served_outputs(float_graph, sequences, manifest["pad_token_id"])
    per_logit = max(np.abs(q - r).max() for q, r in zip(quantized, reference, strict=True))
    assert numbers["tau_pooled"] == pytest.approx(2 * max(GUARD_SAFETY * numbers["quantile_abs_delta"], per_logit),
                                                  abs=1e-6)
    assert numbers["tau"] <= numbers["tau_pooled"]
    gaps = np.concatenate([_gap_errors(q, r, 4 * numbers["tau_pooled"]) for q, r in zip(quantized, reference,
                                                                                       strict=True)])
    assert numbers["tau"] >= gaps.max() - 1e-6
    # every row whose int8 decision differs from the float graph's on these texts is one the guard re-runs
    margins = decision_margins(quantized)
    for q, r, margin in zip(quantized, reference, margins, strict=True):
        if not np.array_equal(np.argmax(q, -1), np.argmax(r, -1)):
            assert margin < numbers["tau"]
    assert numbers["rerun_fraction"] == pytest.approx(float((margins < numbers["tau"]).mean()))
