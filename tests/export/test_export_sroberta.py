"""Seed 003: the ONNX graph holds encoder + attention-masked mean pooling + linear head (no pooling at run time)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.torch

# Very different lengths: the short ones are mostly padding in the batch.
TEXTS = [
    "오늘 서울의 최고 기온은 영상 5도로 어제보다 조금 높겠습니다. 내일은 전국에 비가 오겠습니다.",
    "왜?",
    "그 사람은 아마 내일 회의에 오지 않을 것 같다",
    "네 알겠습니다",
    "2030년까지 전기차 판매량이 두 배로 늘어날 것으로 예측된다",
]


@pytest.fixture(scope="module")
def sroberta(tiny_artifact, standin_dir):
    import onnxruntime as ort
    from kolite_export.layouts import load_checkpoint

    checkpoint = load_checkpoint(standin_dir("003"))
    session = ort.InferenceSession(str(tiny_artifact("003") / "model.fp32.onnx"), providers=["CPUExecutionProvider"])
    return checkpoint, session


def _padded(checkpoint, texts):
    from kolite_export.onnx_export import encode

    return {name: t.numpy() for name, t in encode(checkpoint, texts).items()}


def test_graph_is_one_model_from_ids_to_logits(sroberta):
    checkpoint, session = sroberta
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    logits = session.run(["logits"], _padded(checkpoint, TEXTS))[0]
    assert logits.shape == (len(TEXTS), 4)  # pooled sentence logits, not per-token hidden states


def test_onnx_matches_the_pytorch_module_on_padded_mixed_batches(sroberta):
    import torch

    checkpoint, session = sroberta
    feeds = _padded(checkpoint, TEXTS)
    assert (feeds["attention_mask"] == 0).any()  # the batch really is padded
    assert (feeds["input_ids"][feeds["attention_mask"] == 0] == 1).all()  # with RoBERTa's pad id
    with torch.inference_mode():
        reference = checkpoint.module(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"]))
    np.testing.assert_allclose(session.run(["logits"], feeds)[0], reference.numpy(), atol=1e-4, rtol=0)


def test_padding_does_not_change_a_sentence_logits(sroberta):
    """Masked pooling: each text alone equals the same text inside a padded batch."""
    checkpoint, session = sroberta
    batch = session.run(["logits"], _padded(checkpoint, TEXTS))[0]
    alone = np.concatenate([session.run(["logits"], _padded(checkpoint, [t]))[0] for t in TEXTS])
    np.testing.assert_allclose(batch, alone, atol=1e-4, rtol=0)


def test_the_head_pools_with_the_mask_not_over_all_positions(sroberta):
    """An unmasked mean over padded positions would give other logits: the graph really applies the mask."""
    import torch
    from kolite_export.sroberta import masked_mean_pooling

    checkpoint, session = sroberta
    feeds = _padded(checkpoint, TEXTS)
    ids, mask = torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"])
    module = checkpoint.module
    with torch.inference_mode():
        hidden = module.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        masked = module.classifier(masked_mean_pooling(hidden, mask)).numpy()
        unmasked = module.classifier(hidden.mean(dim=1)).numpy()
    onnx_logits = session.run(["logits"], feeds)[0]
    np.testing.assert_allclose(onnx_logits, masked, atol=1e-4, rtol=0)
    short = feeds["attention_mask"].sum(1) < feeds["attention_mask"].shape[1]
    assert np.abs(onnx_logits[short] - unmasked[short]).max() > 1e-2
