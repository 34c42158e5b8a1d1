"""The fidelity-guard study (``kolite_bench.guard agreement``) on the tiny artifacts: it measures what the runtime
serves — the runtime's guarded outputs equal the study's offline guard bitwise — and, for NER, the guard as served
per aggregation re-runs on token margins alone where the aggregation reads each token's own label."""

from __future__ import annotations

import pytest


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    import kolite_bench.guard as study

    monkeypatch.setattr(study, "SCRATCH", tmp_path)
    return study


def test_classification_study_is_the_served_guard(scratch, tiny_artifact, standin_dir, shared_data):
    result = scratch.agreement(tiny_artifact("000"), standin_dir("000"), 60, str(shared_data), ("int8-static",))
    entry = result["variants"]["int8-static"]
    assert set(result["variants"]) == {"fp32-opt", "int8-static"} and result["texts"] == 60
    assert entry["runtime_guard_equals_offline"] is True
    assert entry["runtime_rows_rerun"] == round(entry["rerun_fraction"] * 60)
    assert entry["guarded"]["label_flips"] <= entry["unguarded"]["label_flips"]
    assert entry["guarded"]["label_flips"] == result["variants"]["fp32-opt"]["unguarded"]["label_flips"] == 0


def test_ner_study_measures_the_guard_per_aggregation_as_served(scratch, tiny_artifact, standin_dir, shared_data):
    result = scratch.agreement(tiny_artifact("004"), standin_dir("004"), 40, str(shared_data), ("int8-static",))
    entry = result["variants"]["int8-static"]
    served = entry["guarded_as_served"]
    assert entry["runtime_guard_equals_offline"] is True  # none: token margins only, as the offline guard
    token_only = served["none"]["rerun_fraction"]
    # simple and first read fewer decisions than every token's margin: they re-run no more
    assert served["simple"]["rerun_fraction"] <= token_only and served["first"]["rerun_fraction"] <= token_only
    assert token_only == pytest.approx(entry["rerun_fraction"])
    for aggregation, numbers in served.items():
        assert numbers["sentences_differing"] <= entry["unguarded"][aggregation]["sentences_differing"], aggregation
