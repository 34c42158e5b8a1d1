"""The pipeline's public seams (encode → run → decode), verified artifact reads, the graph/manifest check, the
provider decided by the session, and long-text windows for classification."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import kolite
import numpy as np
import pytest
from kolite import providers
from kolite.tokenization import Encoded

TEXTS = ["영화 정말 재미있었다", "별로", "", "배우들 연기가 최고였고 음악도 좋았다 다시 보고 싶다"]


def copy_artifact(source, tmp_path, name="copy"):
    return shutil.copytree(source, tmp_path / name)


def edit_manifest(folder, change):
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def test_seams_compose_to_classify_and_tag(tiny_artifact):
    with kolite.load(tiny_artifact("000"), variant="fp32") as model:
        options = model.options(top_k=None)
        encoded = model.encode(TEXTS, options)
        assert isinstance(encoded, Encoded) and len(encoded) == len(TEXTS)
        outputs = model.run(encoded, batch_size=2)
        assert len(outputs) == len(TEXTS) and outputs[0].shape == (len(model.labels),)
        assert model.decode(outputs, encoded, options) == model.classify(TEXTS, top_k=None)
    with kolite.load(tiny_artifact("004"), variant="fp32") as tagger:
        options = tagger.options(aggregation="first", stride=8)
        encoded = tagger.encode(TEXTS, options)
        decoded = tagger.decode(tagger.run(encoded), encoded, options)
        assert decoded == tagger.tag(TEXTS, aggregation="first", stride=8)


def test_run_joins_encodings_and_the_plan_changes_no_fp32_answer(tiny_artifact):
    with kolite.load(tiny_artifact("000"), variant="fp32") as model:
        parts = [model.encode([text]) for text in TEXTS]
        joined = model.run(Encoded.join(parts), batch_size=3, max_tokens=24)
        alone = [model.run(part, batch_size=1)[0] for part in parts]
    assert [row.tobytes() for row in joined] == [row.tobytes() for row in alone]


def test_options_are_validated_once(tiny_artifact):
    with kolite.load(tiny_artifact("000"), variant="fp32") as model:
        for bad in ({"top_k": 0}, {"function_to_apply": "relu"}, {"long_text": "summarise"}, {"pooling": "median"}):
            with pytest.raises(kolite.InvalidInputError):
                model.options(**bad)
        # An option of the other task is refused, not ignored (None means "not given").
        with pytest.raises(kolite.InvalidInputError, match="aggregation does not apply"):
            model.options(aggregation="first", top_k=1)
        assert model.options(aggregation=None, top_k=1).top_k == 1


def test_function_to_apply(tiny_artifact):
    with kolite.load(tiny_artifact("000"), variant="fp32") as model:
        logits = model.logits(TEXTS[:2])
        raw = model.classify(TEXTS[:2], top_k=None, function_to_apply="none")
        sig = model.classify(TEXTS[:2], top_k=None, function_to_apply="sigmoid")
    for row, ranked_raw, ranked_sig in zip(logits, raw, sig, strict=True):
        labels = [p.label for p in ranked_raw]
        assert [p.score for p in ranked_raw] == pytest.approx(sorted(row.tolist(), reverse=True))
        assert [p.score for p in ranked_sig] == pytest.approx([1 / (1 + np.exp(-row[model.labels.index(lab)]))
                                                               for lab in labels])


def test_long_text_windows_pool_every_window(tiny_artifact):
    long_review = "처음엔 지루했다 " * 200 + "그런데 마지막 장면이 정말 최고였다 " * 60
    with kolite.load(tiny_artifact("000"), variant="fp32") as model:
        truncated = model.logits([long_review])
        windowed = model.logits([long_review], long_text="windows", stride=16)
        maxed = model.logits([long_review], long_text="windows", stride=16, pooling="max")
        encoded = model.encode([long_review], model.options(long_text="windows", stride=16))
        per_window = np.stack(model.run(encoded))
        short, plain = model.logits(["별로"], long_text="windows"), model.logits(["별로"])
    assert len(per_window) >= 2 and encoded.truncated == (False,)
    np.testing.assert_allclose(windowed[0], per_window.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(maxed[0], per_window.max(axis=0), rtol=1e-6)
    np.testing.assert_allclose(truncated[0], per_window[0], atol=1e-5)  # the first window is the truncated text
    assert short.tobytes() == plain.tobytes()  # one window: nothing changes


@pytest.mark.parametrize(("labels", "what"), [(["a", "b", "c"], "3 labels"), (["only"], "1 labels")])
def test_labels_that_do_not_match_the_graph_are_refused_at_load(tiny_artifact, tmp_path, labels, what):
    folder = copy_artifact(tiny_artifact("000"), tmp_path)
    edit_manifest(folder, lambda m: m.update(labels=labels))
    with pytest.raises(kolite.ManifestError, match=f"with {what} needs"):
        kolite.load(folder, variant="fp32")
    result = subprocess.run([sys.executable, "-m", "kolite.cli", "predict", str(folder), "좋다"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "labels" in result.stderr


def test_task_that_does_not_match_the_graph_is_refused(tiny_artifact, tmp_path):
    folder = copy_artifact(tiny_artifact("000"), tmp_path)
    edit_manifest(folder, lambda m: m.update(task="token-classification"))
    with pytest.raises(kolite.ManifestError, match="token-classification"):
        kolite.load(folder, variant="fp32")


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.json", "link.json"])
def test_tokenizer_outside_the_folder_is_never_read(tiny_artifact, tmp_path, target):
    folder = copy_artifact(tiny_artifact("000"), tmp_path)
    outside = tmp_path / "outside.json"
    shutil.copy(folder / "tokenizer.json", outside)
    os.symlink(outside, folder / "link.json")
    edit_manifest(folder, lambda m: m["tokenizer"].update(file=target))
    with pytest.raises(kolite.ManifestError, match="outside the artifact folder"):
        kolite.load(folder, variant="fp32")


def test_missing_corrupt_or_huge_tokenizer_is_an_integrity_error(tiny_artifact, tmp_path, monkeypatch):
    folder = copy_artifact(tiny_artifact("000"), tmp_path)
    (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    with pytest.raises(kolite.IntegrityError, match=r"tokenizer\.json"):
        kolite.load(folder, variant="fp32")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(kolite.IntegrityError, match="missing"):
        kolite.load(folder, variant="fp32")
    shutil.copy(tiny_artifact("000") / "tokenizer.json", folder / "tokenizer.json")
    monkeypatch.setattr(kolite.api, "MAX_TOKENIZER_BYTES", 1000)
    with pytest.raises(kolite.IntegrityError, match="over the"):
        kolite.load(folder, variant="fp32")


def test_cuda_that_cannot_start_reselects_the_variant_for_the_cpu(tiny_artifact, monkeypatch):
    # onnxruntime (CPU build) drops an EP it cannot start with only a log line: the session runs on the CPU.
    monkeypatch.setattr(providers, "available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.warns(RuntimeWarning, match="could not initialise CUDAExecutionProvider"):
        model = kolite.load(tiny_artifact("000"), device="auto")
    # auto on CUDA would pick fp32-opt (no fp16 here); the CPU that really runs prefers batch-invariant int8.
    assert model.device == "cpu" and model.variant.name == "int8-static"
    assert model.session.providers == ["CPUExecutionProvider"]
    with pytest.raises(kolite.ProviderUnavailableError):
        kolite.load(tiny_artifact("000"), device="cuda")


def test_a_shorter_window_than_the_manifest(tiny_artifact):
    text = "정말 재미있는 영화였다 " * 40
    with kolite.load(tiny_artifact("000"), variant="fp32", max_length=32) as short:
        encoded = short.encode([text])
        assert len(encoded.sequences[0]) == 32 and encoded.truncated == (True,)
        windows = short.encode([text], short.options(long_text="windows"))
        assert len(windows.sequences) > 2 and max(map(len, windows.sequences)) == 32
    for bad in (4, 100_000, 1.5, True):
        with pytest.raises(kolite.InvalidInputError, match="max_length"):
            kolite.load(tiny_artifact("000"), max_length=bad)
