"""``spread``: kolite's one way to sample a data set (validation, calibration, bench texts)."""

from __future__ import annotations

from kolite_export.calibration import CALIBRATION_SETS
from kolite_export.catalogue import DataSet, spread


def test_spread_takes_evenly_spaced_items_in_order() -> None:
    assert spread(range(10), 5) == [0, 2, 4, 6, 8]
    assert spread(list("abcdefg"), 3) == ["a", "c", "e"]
    assert spread(["x", "y"], 5) == ["x", "y"]  # fewer than asked: all of them
    assert spread([], 3) == []


def test_a_data_set_spreads_its_texts_and_labels_together(tmp_path) -> None:
    data = DataSet("t", tmp_path, "-", tuple(f"text {i}" for i in range(8)), labels=tuple(str(i % 2) for i in range(8)))
    picked = data.spread(4)
    assert picked.texts == ("text 0", "text 2", "text 4", "text 6") and picked.labels == ("0", "0", "0", "0")
    assert data.spread(None) is data


def test_the_bench_calibrates_its_peers_from_exports_map() -> None:
    from kolite_bench.calibration import CALIBRATION_SOURCES

    assert {key: CALIBRATION_SOURCES[key] for key in CALIBRATION_SETS} == CALIBRATION_SETS
