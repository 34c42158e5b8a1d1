"""The speed levers kept in the runtime change no answer: single-text fast path, CPU fusions turned off,
session config entries passed through."""

from __future__ import annotations

import kolite
import numpy as np
import onnxruntime as ort
import pytest
from kolite.session import CPU_DISABLED_OPTIMIZERS

TEXTS = ["영화 정말 재미있었다", "별로", "", "배우들 연기가 최고였고 음악도 좋았다 다시 보고 싶다"]


def test_single_text_fast_path_matches_the_batched_path(tiny_artifact):
    # fp32: dynamic int8 quantizes activations per batch, so padding partners shift its logits by ~1e-3 by design.
    with kolite.load(tiny_artifact("000"), variant="fp32", threads=1) as model:
        batched = model.logits(TEXTS, batch_size=4)
        singles = np.concatenate([model.logits([text], batch_size=1) for text in TEXTS])
    np.testing.assert_allclose(singles, batched, rtol=0, atol=1e-4)


def test_token_classifier_single_text_keeps_every_token(tiny_artifact):
    with kolite.load(tiny_artifact("004"), variant="fp32", threads=1) as model:
        (single,) = model.token_logits(["홍길동은 서울에 산다"])
        tokens = len(model.encoder.encode(["홍길동은 서울에 산다"]).sequences[0])
        batched = model.token_logits(["홍길동은 서울에 산다", "아주 긴 문장 하나를 더 넣어 패딩이 생기게 한다"])
    assert single.shape == (tokens, len(model.labels))
    np.testing.assert_allclose(single, batched[0], rtol=0, atol=1e-4)


@pytest.mark.torch  # reads the graphs with `onnx`, which only the export environment has
def test_cpu_sessions_skip_the_slow_fusions_without_changing_logits(tiny_artifact, tmp_path):
    import onnx
    artifact = tiny_artifact("000")
    saved = tmp_path / "as-run.onnx"
    with kolite.load(
        artifact, variant="fp32", threads=1, session_options={"optimized_model_filepath": str(saved)}
    ) as model:
        ours = model.logits(TEXTS)
        feeds_model = model
    ops = {node.op_type for node in onnx.load(str(saved)).graph.node}
    assert "LayerNormalization" in ops and not ops & {"SkipLayerNormalization", "BiasGelu"}, ops

    # Reference: onnxruntime with every fusion it makes by default (SkipLayerNormalization included).
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "default.onnx")
    session = ort.InferenceSession(str(artifact / feeds_model.variant.file), options, ["CPUExecutionProvider"])
    default_ops = {node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node}
    assert default_ops & {"SkipLayerNormalization", "BiasGelu"}, default_ops  # what the runtime avoids
    reference = []
    for text in TEXTS:
        ids = np.asarray(feeds_model.encoder.encode([text]).sequences, dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        reference.append(session.run(["logits"], {i.name: feeds[i.name] for i in session.get_inputs()})[0])
    np.testing.assert_allclose(ours, np.concatenate(reference), rtol=0, atol=1e-4)
    assert "SkipLayerNormFusion" in CPU_DISABLED_OPTIMIZERS


def test_dotted_session_options_are_config_entries(tiny_artifact):
    with kolite.load(
        tiny_artifact("000"), variant="int8", threads=2, session_options={"session.intra_op.allow_spinning": "0"}
    ) as model:
        assert model.logits(["좋다"]).shape == (1, len(model.labels))
