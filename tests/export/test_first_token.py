"""The first-token tail: a head that reads only ``hidden[:, 0]`` gets the encoder's last row-wise nodes on that
token alone, and int8-static's logits stay bitwise the same (fp32-opt's within float GEMM rounding)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

TEXTS = [
    "영화 정말 재미있었다",
    "별로",
    "",
    "배우들 연기가 최고였고 음악도 좋았다 다시 보고 싶다 ㅋㅋㅋ 강추합니다!!",
    "처음 30분은 지루했지만 후반부 반전이 대단했다. 감독의 다음 작품이 기대된다.",
    "ㅡㅡ 시간 아깝다",
    "굿",
    "기대 이하... 2점도 아깝다 " * 6,
]

pytestmark = pytest.mark.torch


def _context(checkpoint_dir: Path, workdir: Path, texts: list[str]):
    from kolite_export.cpu import detect_cpu
    from kolite_export.layouts import load_checkpoint
    from kolite_export.onnx_export import export_fp32
    from kolite_export.variants import BuildContext

    checkpoint = load_checkpoint(checkpoint_dir)
    export_fp32(checkpoint, workdir / "model.fp32.onnx")
    return BuildContext(checkpoint, workdir, detect_cpu(), calibration_texts=tuple(t for t in texts if t))


def _logits(graph: Path, checkpoint, texts: list[str], batch_size: int) -> np.ndarray:
    from kolite_export.trial import cpu_session
    from kolite_export.validation import encode_set, onnx_outputs

    outputs = onnx_outputs(cpu_session(graph, threads=1), checkpoint, encode_set(checkpoint, tuple(texts), batch_size))
    return np.stack(outputs)


def _with_and_without_pass(ctx, monkeypatch, variant: str) -> tuple[Path, Path, dict]:
    """``variant`` built as export builds it, and built again with the first-token pass switched off."""
    import kolite_export.first_token as first_token
    import kolite_export.static_int8 as static_int8
    from kolite_export.variants import get_variant

    spec = get_variant(variant)
    rewritten, plain = ctx.workdir / "rewritten.onnx", ctx.workdir / "plain.onnx"
    recipe = spec.build(ctx, rewritten)
    monkeypatch.setattr(first_token, "first_token_tail", lambda model: (model, {"applied": False}))
    monkeypatch.setattr(static_int8, "first_token_tail", lambda model: (model, {"applied": False}))
    spec.build(ctx, plain)
    return rewritten, plain, recipe


@pytest.mark.parametrize("batch_size", [1, 3, len(TEXTS)])
def test_int8_static_logits_are_bitwise_the_same_with_the_first_token_tail(
    standin_dir, tmp_path, monkeypatch, batch_size
):
    ctx = _context(standin_dir("000"), tmp_path, TEXTS)
    rewritten, plain, recipe = _with_and_without_pass(ctx, monkeypatch, "int8-static")
    info = recipe["first_token_tail"]
    assert info["applied"] and info["nodes"] >= 8, info  # out-proj, residuals, 2 LayerNorms, FFN, Gelu, quantizers
    assert len(info["from"]) == 2  # the attention output and the residual stream
    got = _logits(rewritten, ctx.checkpoint, TEXTS, batch_size)
    expected = _logits(plain, ctx.checkpoint, TEXTS, batch_size)
    assert np.array_equal(got, expected), f"max |Δ| {np.abs(got - expected).max():.3g}"


def test_fp32_opt_logits_stay_within_float_rounding(standin_dir, tmp_path, monkeypatch):
    """A float GEMM over 1 row may sum in another order than over S rows (MLAS picks its kernel by shape), so
    fp32-opt is not bitwise: its logits stay within 1e-5 and every label is the same."""
    ctx = _context(standin_dir("000"), tmp_path, TEXTS)
    rewritten, plain, recipe = _with_and_without_pass(ctx, monkeypatch, "fp32-opt")
    assert recipe["first_token_tail"]["applied"]
    got = _logits(rewritten, ctx.checkpoint, TEXTS, len(TEXTS))
    expected = _logits(plain, ctx.checkpoint, TEXTS, len(TEXTS))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_the_pass_leaves_graphs_whose_head_reads_every_token(standin_dir, tmp_path):
    """003 mean-pools every token and 004 labels every token: nothing is removed, and the recipe says why."""
    import onnx
    from kolite_export.first_token import first_token_tail

    for seed in ("003", "004"):
        workdir = tmp_path / seed
        workdir.mkdir()
        ctx = _context(standin_dir(seed), workdir, TEXTS)
        path, _ = ctx.optimized(cpu_kernels=True)
        model = onnx.load(str(path))
        result, info = first_token_tail(model)
        assert result is model and not info["applied"], (seed, info)
        assert "first token" in info["reason"], info


def test_dynamic_int8_is_left_alone_because_its_scales_read_every_token(standin_dir, tmp_path):
    import onnx
    from kolite_export.first_token import first_token_tail
    from kolite_export.variants import get_variant

    ctx = _context(standin_dir("000"), tmp_path, TEXTS)
    recipe = get_variant("int8").build(ctx, tmp_path / "int8.onnx")
    model = onnx.load(str(tmp_path / "int8.onnx"))
    result, info = first_token_tail(model)
    assert result is model and not info["applied"]
    assert "dynamic quantization" in info["reason"]
    assert "first_token_tail" not in recipe  # the dynamic variant does not claim the pass


def test_the_exported_manifest_records_the_pass(tiny_artifact):
    manifest = json.loads((tiny_artifact("000") / "manifest.json").read_text(encoding="utf-8"))
    for name in ("fp32-opt", "int8-static"):
        recipe = manifest["variants"][name]["recipe"]
        assert recipe["first_token_pass"] >= 1
        assert recipe["first_token_tail"]["applied"], (name, recipe["first_token_tail"])


@pytest.mark.slow
def test_the_trained_000_stand_in_keeps_bitwise_logits_on_real_reviews(shared_data, tmp_path, monkeypatch):
    """The full-size trained 000 stand-in (12 layers, hidden 256), int8-static, 256 NSMC test reviews."""
    from kolite_export.catalogue import read_nsmc

    reviews = list(read_nsmc(shared_data / "data" / "nsmc" / "ratings_test.txt").texts[:256])
    ctx = _context(shared_data / "standins" / "koelectra-small-v3-nsmc", tmp_path, reviews[:64])
    rewritten, plain, recipe = _with_and_without_pass(ctx, monkeypatch, "int8-static")
    assert recipe["first_token_tail"]["applied"]
    for batch_size in (1, 32):
        got = _logits(rewritten, ctx.checkpoint, reviews, batch_size)
        expected = _logits(plain, ctx.checkpoint, reviews, batch_size)
        assert np.array_equal(got, expected), f"batch {batch_size}: max |Δ| {np.abs(got - expected).max():.3g}"
