"""Bad input, bad artifacts, bad devices: each gives a clear, typed error (or documented result)."""

from __future__ import annotations

import json
import shutil
import warnings

import kolite
import numpy as np
import pytest
from kolite import providers
from kolite.batching import pad_batch, plan_batches, run_planned
from kolite.providers import resolve_device


@pytest.fixture(scope="module")
def model(tiny_artifact):
    return kolite.load(tiny_artifact("000"), variant="fp32", max_items=5)


@pytest.mark.parametrize(
    ("texts", "match"),
    [
        ([], "empty list"),
        (["ok", None], r"texts\[1\] is NoneType"),
        (["ok", "ok", 3], r"texts\[2\] is int"),
        ([b"bytes"], r"texts\[0\] is bytes"),
        (None, "must be a str or a list"),
        (42, "must be a str or a list"),
        (b"raw", "must be a str or a list"),
        (["x"] * 6, "exceeds max_items=5"),
    ],
)
def test_invalid_texts_raise_invalid_input(model, texts, match):
    for call in (model.classify, model.logits, model.predict):
        with pytest.raises(kolite.InvalidInputError, match=match):
            call(texts)


def test_bad_batch_size(model):
    for bad in (0, -3, 1.5, None):
        with pytest.raises(kolite.InvalidInputError, match="batch_size"):
            model.logits(["x"], batch_size=bad)


def test_unknown_variant_lists_valid_ones(tiny_artifact):
    with pytest.raises(kolite.UnknownVariantError, match=r"no variant 'int4'.*valid: auto, "):
        kolite.load(tiny_artifact("000"), variant="int4")


def test_failed_variant_is_skipped_by_auto_and_warns_when_named(tiny_artifact, tmp_path):
    folder = shutil.copytree(tiny_artifact("000"), tmp_path / "failed")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["variants"]["int8"]["status"] = "failed"
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert kolite.load(folder).variant.name != "int8"
    with pytest.warns(RuntimeWarning, match="FAILED validation"):
        assert kolite.load(folder, variant="int8").variant.name == "int8"


@pytest.mark.parametrize("device", ["tpu", "gpu", "cpu:1", "cuda:x", ""])
def test_unknown_device(tiny_artifact, device):
    with pytest.raises(kolite.UnknownVariantError, match="valid devices: cpu, cuda, auto"):
        kolite.load(tiny_artifact("000"), device=device)


def test_cuda_without_cuda_provider_raises(tiny_artifact, monkeypatch):
    monkeypatch.setattr(providers, "available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(kolite.ProviderUnavailableError, match="CUDAExecutionProvider"):
        kolite.load(tiny_artifact("000"), device="cuda")


def test_auto_device_without_cuda_warns_and_runs_on_cpu(tiny_artifact, monkeypatch):
    monkeypatch.setattr(providers, "available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.warns(RuntimeWarning, match="no CUDAExecutionProvider"):
        model = kolite.load(tiny_artifact("000"), device="auto")
    assert model.device == "cpu" and model.session.providers == ["CPUExecutionProvider"]


def test_resolve_device_picks_cuda_chain_when_available():
    spec = resolve_device("cuda:1", available=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert spec.providers[0] == "CUDAExecutionProvider" and spec.device_id == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_device("auto", available=["CUDAExecutionProvider", "CPUExecutionProvider"]).is_cuda


def flip_byte(path, position=None):
    data = bytearray(path.read_bytes())
    position = len(data) // 2 if position is None else position
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("file", ["model.fp32.onnx", "tokenizer.json"])
def test_tampered_file_fails_integrity_before_session(tiny_artifact, tmp_path, monkeypatch, file):
    import onnxruntime

    folder = shutil.copytree(tiny_artifact("000"), tmp_path / "tampered")
    flip_byte(folder / file)

    def no_session(*args, **kwargs):
        raise AssertionError("an InferenceSession was created before the sha256 check")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_session)
    with pytest.raises(kolite.IntegrityError, match=f"{file} sha256"):
        kolite.load(folder, variant="fp32")


def test_truncated_or_missing_file(tiny_artifact, tmp_path):
    folder = shutil.copytree(tiny_artifact("000"), tmp_path / "broken")
    path = folder / "model.fp32.onnx"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(kolite.IntegrityError, match="bytes, the manifest records"):
        kolite.load(folder, variant="fp32")
    path.unlink()
    with pytest.raises(kolite.IntegrityError, match="missing"):
        kolite.load(folder, variant="fp32")


def test_manifest_naming_a_file_outside_the_folder(tiny_artifact, tmp_path):
    folder = shutil.copytree(tiny_artifact("000"), tmp_path / "escape")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["variants"]["fp32"]["file"] = "../../etc/passwd"
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(kolite.ManifestError, match="outside the artifact folder"):
        kolite.load(folder, variant="fp32")


def test_not_an_artifact_and_not_found(tmp_path):
    with pytest.raises(kolite.ManifestError, match="not a kolite artifact"):
        kolite.load(tmp_path)
    for ref in (tmp_path / "missing", "./nope", "a/b/c"):
        with pytest.raises(kolite.ModelNotFoundError, match="neither an artifact folder nor a Hugging Face Hub id"):
            kolite.load(ref)


def test_hub_id_offline_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(kolite.OfflineError, match=r"HF_HUB_OFFLINE.*huggingface-cli download"):
        kolite.load("daekeun-ml/koelectra-small-v3-nsmc")


def test_session_options_are_overridable(tiny_artifact):
    model = kolite.load(
        tiny_artifact("000"),
        variant="fp32",
        threads=1,
        session_options={"graph_optimization_level": "ORT_ENABLE_BASIC"},
    )
    assert model.logits(["좋다"]).shape == (1, len(model.labels))
    with pytest.raises(kolite.KoliteError, match="no attribute 'warp_speed'"):
        kolite.load(tiny_artifact("000"), variant="fp32", session_options={"warp_speed": 9})


def test_batches_pad_to_their_longest_item_with_the_manifest_pad_id():
    seen = []

    def run(feeds):
        seen.append(feeds)
        return feeds["input_ids"][:, :1].astype(np.float32)

    sequences = [[5] * n for n in (3, 9, 1, 8, 2)]
    out = run_planned(sequences, lambda batches: [run(feeds) for feeds in batches], pad_token_id=7, max_items=2)
    assert [feeds["input_ids"].shape[1] for feeds in seen] == [9, 3, 1]  # longest first, never max_length
    assert all((f["input_ids"][f["attention_mask"] == 0] == 7).all() for f in seen)
    assert [float(o[0]) for o in out] == [5.0] * 5
    # A token budget cuts calls by padded size (items x longest), a lone sequence over it still runs.
    assert [c.tolist() for c in plan_batches([3, 9, 1, 8, 2], max_items=8, max_tokens=18)] == [[1, 3], [0, 4, 2]]
    assert [c.tolist() for c in plan_batches([30, 2], max_items=8, max_tokens=10)] == [[0], [1]]
    batch = pad_batch([[1, 2], [3]], pad_token_id=1)
    assert batch["input_ids"].tolist() == [[1, 2], [3, 1]] and batch["attention_mask"].tolist() == [[1, 1], [1, 0]]


def test_a_call_of_mixed_lengths_is_cut_into_the_cheapest_length_groups():
    import itertools

    from kolite.batching import split_by_length

    def cost(groups, lengths, overhead):
        return sum(len(g) * int(lengths[g[0]]) + overhead for g in groups)

    rng = np.random.default_rng(0)
    for _ in range(40):
        lengths = rng.integers(1, 130, size=int(rng.integers(2, 9)))
        call = np.argsort(-lengths, kind="stable")
        groups = split_by_length(call, lengths, overhead=20)
        assert np.concatenate(groups).tolist() == call.tolist()  # every index once, order kept
        # against every possible cut of the sorted call
        cheapest = min(
            cost(np.split(call, list(cuts)), lengths, 20)
            for k in range(len(call))
            for cuts in itertools.combinations(range(1, len(call)), k)
        )
        assert cost(groups, lengths, 20) == cheapest
    # similar lengths (a sorted plan's call) stay one call; a file-order batch of short texts and one long is cut
    assert len(split_by_length(np.arange(32), np.full(32, 20))) == 1
    mixed = np.array([120] + [10] * 31)
    assert [g.tolist() for g in split_by_length(np.arange(32), mixed)] == [[0], list(range(1, 32))]
    # and the outputs still come back whole and in input order
    seen = []

    def run(feeds):
        seen.append(feeds["input_ids"].shape)
        return feeds["input_ids"][:, :1].astype(np.float32) + feeds["attention_mask"].sum(1, keepdims=True)

    sequences = [[5] * int(n) for n in mixed]
    out = run_planned(sequences, lambda batches: [run(feeds) for feeds in batches], pad_token_id=0, max_items=32)
    assert seen == [(1, 120), (31, 10)]
    assert [float(o[0]) for o in out] == [5.0 + len(s) for s in sequences]


def test_hub_id_downloads_only_manifest_tokenizer_and_the_chosen_variant(tiny_artifact, tmp_path, monkeypatch):
    import huggingface_hub

    source, snapshot, requested = tiny_artifact("000"), tmp_path / "snapshot", []

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=()):
        requested.append((repo_id, tuple(allow_patterns)))
        snapshot.mkdir(exist_ok=True)
        for name in allow_patterns:
            shutil.copy(source / name, snapshot / name)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.chdir(tmp_path)
    model = kolite.load("someone/tiny-000", variant="fp32")
    assert model.artifact_dir == snapshot and model.classify("좋다")
    assert requested == [
        ("someone/tiny-000", ("manifest.json", "tokenizer.json")),
        ("someone/tiny-000", ("model.fp32.onnx",)),
    ]


def test_closed_model_says_so(tiny_artifact):
    with kolite.load(tiny_artifact("000"), variant="fp32") as model:
        model.logits(["좋다"])
    with pytest.raises(kolite.KoliteError, match="closed"):
        model.logits(["좋다"])


def test_cuda_chain_carries_kolites_provider_options():
    # fp32 on CUDA must be real fp32 (TF32 off), memory must grow by what a call needs; every value a string.
    spec = resolve_device("cuda:1", available=["CUDAExecutionProvider", "CPUExecutionProvider"])
    options = spec.provider_options[0]
    assert options["device_id"] == "1" and options["use_tf32"] == "0"
    assert "arena_extend_strategy" not in options  # onnxruntime's default growth: see providers.py
    assert all(isinstance(v, str) for v in options.values())
    assert spec.provider_options[1] == {}  # the CPU fallback for nodes CUDA has no kernel for


@pytest.mark.torch  # builds its graph with onnx, which only the export environment has
def test_session_feeds_the_graphs_own_id_dtype_and_returns_float32(tmp_path):
    # A graph declaring int32 ids and a float16 output (common for GPU exports): kolite's int64 ids are cast to
    # what the graph declares, and the output comes back as float32, on every device path.
    import numpy as np
    from kolite.providers import cpu_device
    from kolite.session import OnnxModel
    from onnx import TensorProto, helper, save

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT32, ["batch", "seq"])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT16, ["batch", "seq"])
    nodes = [helper.make_node("Mul", ["input_ids", "attention_mask"], ["masked"]),
             helper.make_node("Cast", ["masked"], ["logits"], to=TensorProto.FLOAT16)]
    model = helper.make_model(helper.make_graph(nodes, "g", [ids, mask], [out]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(tmp_path / "g.onnx"))
    session = OnnxModel(tmp_path / "g.onnx", cpu_device(), threads=1, parallel=0)
    feeds = {"input_ids": np.array([[5, 7, 0]], dtype=np.int64), "attention_mask": np.array([[1, 1, 0]])}
    result = session.run(feeds)
    assert result.dtype == np.float32 and result.tolist() == [[5.0, 7.0, 0.0]]


def test_cuda_session_plans_memory_per_shape_unless_the_caller_decides(monkeypatch, tmp_path):
    # On CUDA, sorted plans repeat their shapes: onnxruntime's memory patterns stay on there (off on CPU), and a
    # caller's own setting wins. The session is faked: no GPU here.
    import onnxruntime as ort
    from kolite.session import OnnxModel

    seen = []

    class FakeSession:
        def __init__(self, path, sess_options, providers, provider_options, disabled_optimizers):
            seen.append((sess_options.enable_mem_pattern, providers, provider_options, disabled_optimizers))

        def get_providers(self):
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

        def get_inputs(self):
            return []

        def get_outputs(self):
            return [type("Out", (), {"name": "logits"})()]

    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setattr("kolite.session.external_tensors", lambda graph: [])
    (tmp_path / "g.onnx").write_bytes(b"not parsed: the session is fake")
    cuda = resolve_device("cuda", available=["CUDAExecutionProvider", "CPUExecutionProvider"])
    OnnxModel(tmp_path / "g.onnx", cuda)
    OnnxModel(tmp_path / "g.onnx", cuda, session_options={"enable_mem_pattern": False})
    assert [s[0] for s in seen] == [True, False]
    assert seen[0][1] == ["CUDAExecutionProvider", "CPUExecutionProvider"] and seen[0][3] == []
    assert seen[0][2][0]["use_tf32"] == "0"
