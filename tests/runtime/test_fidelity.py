"""Fidelity: export and runtime open graphs one way; the bytes that were hashed are the bytes that run; the fidelity
guard gives the float graph's answers where int8 would flip them, batch-invariantly, in the API and the server."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import kolite
import numpy as np
import pytest
from kolite.batching import pad_batch
from kolite.errors import KoliteError

pytestmark = pytest.mark.torch  # exports and inspects graphs (kolite_export, onnx)

TEXTS = [
    "영화 정말 재미있었다",
    "별로",
    "",
    "배우들 연기가 최고였고 음악도 좋았다",
    "ㅋㅋ",
    "다시 보고 싶다",
    "시간 낭비였다 진짜 최악",
    "그냥 그랬어요",
    "스토리는 뻔하지만 볼만함",
    "Mixed 한국어 😀 review",
] * 3
NER_TEXTS = ["홍길동은 서울에서 삼성전자에 다닌다", "2024년 3월 1일 부산 해운대", "", "김철수 씨가 LG에 갔다"] * 3


def _record_sessions(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every onnxruntime session created from now on: its graph source type, options and keyword arguments."""
    import onnxruntime as ort

    created: list[dict] = []
    real = ort.InferenceSession

    def recording(source, sess_options=None, providers=None, provider_options=None, **kwargs):
        options = sess_options
        created.append(
            {
                "from_bytes": isinstance(source, (bytes, bytearray)),
                "disabled_optimizers": sorted(kwargs.get("disabled_optimizers", [])),
                "providers": list(providers or []),
                "options": {
                    name: str(getattr(options, name))
                    for name in (
                        "graph_optimization_level",
                        "execution_mode",
                        "inter_op_num_threads",
                        "enable_cpu_mem_arena",
                        "enable_mem_pattern",
                    )
                },
                "threads": options.intra_op_num_threads,
            }
        )
        return real(source, sess_options, providers, provider_options, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    return created


# ---- one owner of how a graph is opened ---------------------------------------------------------------------------


def test_export_gates_and_benchmarks_open_graphs_exactly_as_the_runtime(tiny_artifact, monkeypatch):
    from kolite.session import cpu_session
    from kolite_bench import int8_study
    from kolite_export import trial

    assert trial.cpu_session is cpu_session  # repair and gates use the runtime's opener, not a copy
    artifact = tiny_artifact("000")
    created = _record_sessions(monkeypatch)
    with kolite.load(artifact, variant="int8-static", parallel=0) as model:
        served = created[-1]
        graph = artifact / model.variant.file
        trial.cpu_session(graph)
        export_opened = created[-1]
        int8_study._session(graph, None)
        bench_opened = created[-1]
    assert served["from_bytes"] and export_opened["from_bytes"] and bench_opened["from_bytes"]
    assert served["disabled_optimizers"] == ["BiasGeluFusion", "SkipLayerNormFusion"]
    for other in (export_opened, bench_opened):
        assert other["disabled_optimizers"] == served["disabled_optimizers"]
        assert other["options"] == served["options"]
        assert other["providers"] == served["providers"]
        assert other["threads"] == served["threads"]  # the CPU budget, not os.cpu_count()


@pytest.mark.parametrize(("seed", "variant"), [("000", "int8-static"), ("000", "int8"), ("004", "int8-static")])
def test_gate_logits_are_bitwise_the_served_logits(tiny_artifact, seed, variant):
    """What export's gate measures (``served_outputs``) and its raw-session path are what ``kolite.load`` serves."""
    from kolite.session import cpu_session
    from kolite_export.validation import runtime_sequences, served_outputs

    artifact = tiny_artifact(seed)
    texts = tuple(NER_TEXTS if seed == "004" else TEXTS)
    with kolite.load(artifact, variant=variant) as model:
        sequences = runtime_sequences(artifact / "tokenizer.json", model.manifest.max_length, texts)
        assert [list(s) for s in sequences] == [list(s) for s in model.encode(list(texts)).sequences]
        served = model.run(model.encode(list(texts)))
        gate = served_outputs(artifact / model.variant.file, sequences, model.manifest.pad_token_id)
        feeds = pad_batch(sequences[:4], model.manifest.pad_token_id)
        feeds = {name: feeds.get(name, np.zeros_like(feeds["input_ids"])) for name in model.session.input_names}
        raw = cpu_session(artifact / model.variant.file).run(["logits"], feeds)[0]
        api = model.session.run(feeds)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(served, gate, strict=True))
    assert raw.tobytes() == api.tobytes()


# ---- read once ----------------------------------------------------------------------------------------------------


def test_swapping_the_graph_after_the_hash_check_cannot_change_what_runs(tiny_artifact, tmp_path, monkeypatch):
    import kolite.api

    artifact = tmp_path / "000"
    shutil.copytree(tiny_artifact("000"), artifact)
    manifest = kolite.load_manifest(artifact)
    fp32_file, int8_file = artifact / manifest.variants["fp32"].file, artifact / manifest.variants["int8"].file
    texts = [f"{i}번째 리뷰 " + "재밌다 " * (i % 9) for i in range(40)]
    with kolite.load(artifact, variant="fp32", parallel=0) as honest:
        expected = honest.logits(texts, batch_size=4)
    with kolite.load(artifact, variant="int8", parallel=0) as other:
        assert other.logits(texts, batch_size=4).tobytes() != expected.tobytes()  # the swap would show

    real = kolite.api.read_verified
    swapped = []

    def read_then_swap(path, *args, **kwargs):
        data = real(path, *args, **kwargs)
        if Path(path).name == fp32_file.name and not swapped:  # the attacker wins the race right after the check
            fp32_file.write_bytes(int8_file.read_bytes())
            swapped.append(path)
        return data

    monkeypatch.setattr(kolite.api, "read_verified", read_then_swap)
    with kolite.load(artifact, variant="fp32", threads=1, parallel=2) as model:
        assert swapped
        got = model.logits(texts, batch_size=4)  # several calls: the one-thread sessions are made now, after the swap
        one = model.logits(texts[:3], batch_size=4)
    assert got.tobytes() == expected.tobytes() and one.tobytes() == expected[:3].tobytes()


def test_a_graph_with_external_data_is_refused_and_nothing_is_read_from_the_working_directory(
    tiny_artifact, tmp_path, monkeypatch
):
    import onnx

    artifact = tmp_path / "000"
    shutil.copytree(tiny_artifact("000"), artifact)
    data = json.loads((artifact / "manifest.json").read_text(encoding="utf-8"))
    entry = data["variants"]["fp32"]
    model = onnx.load(str(artifact / entry["file"]))
    onnx.save(model, str(artifact / entry["file"]), save_as_external_data=True, location="weights.bin",
              size_threshold=0)
    graph = (artifact / entry["file"]).read_bytes()
    entry.update(sha256=hashlib.sha256(graph).hexdigest(), size_bytes=len(graph))  # a re-signed manifest
    (artifact / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.chdir(artifact)  # onnxruntime would find weights.bin here, unverified
    with pytest.raises(KoliteError, match="external data"):
        kolite.load(artifact, variant="fp32")


# ---- the fidelity guard -------------------------------------------------------------------------------------------


def _flipping_artifact(source: Path, out: Path, texts: list[str]) -> tuple[Path, np.ndarray]:
    """A copy of ``source`` whose int8-static graph adds a constant to its logits, chosen so that exactly one text's
    int8 label flips by a hair (an int8 error at the decision boundary), with τ measured by export's own method
    on ``texts``. Returns the folder and the float graph's labels of ``texts``."""
    import onnx
    from kolite_export.guard_threshold import measure_guard
    from kolite_export.validation import runtime_sequences

    shutil.copytree(source, out)
    data = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    with kolite.load(out, variant="int8-static", guard=False) as quantized:
        int8_logits = quantized.logits(texts)
    with kolite.load(out, variant="fp32-opt") as reference:
        float_logits = reference.logits(texts)
    labels = float_logits.argmax(-1)
    top = int8_logits.argmax(-1)
    margins = np.sort(int8_logits, -1)[:, -1] - np.sort(int8_logits, -1)[:, -2]
    chosen = int(np.argmin(np.where(top == labels, margins, np.inf)))  # the closest call int8 still gets right
    shift = np.zeros(int8_logits.shape[-1], dtype=np.float32)
    shift[top[chosen]] = -(margins[chosen] + 1e-3)  # now it falls just on the other side

    entry = data["variants"]["int8-static"]
    graph = onnx.load(str(out / entry["file"]))
    assert any(o.name == "logits" for o in graph.graph.output)
    for node in graph.graph.node:
        node.output[:] = ["logits_int8" if name == "logits" else name for name in node.output]
    graph.graph.initializer.append(onnx.numpy_helper.from_array(shift, "logit_shift"))
    graph.graph.node.append(onnx.helper.make_node("Add", ["logits_int8", "logit_shift"], ["logits"]))
    onnx.save(graph, str(out / entry["file"]))
    raw = (out / entry["file"]).read_bytes()
    entry.update(sha256=hashlib.sha256(raw).hexdigest(), size_bytes=len(raw))

    sequences = runtime_sequences(out / "tokenizer.json", data["max_length"], tuple(texts))
    numbers = measure_guard(out / entry["file"], out / data["variants"]["fp32-opt"]["file"], sequences,
                            data["pad_token_id"])
    entry["guard"] = {"float_variant": "fp32-opt", **numbers, "data": "the test's texts"}
    (out / "manifest.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return out, labels


@pytest.fixture(scope="module")
def flipping(tiny_artifact, tmp_path_factory):
    return _flipping_artifact(tiny_artifact("000"), tmp_path_factory.mktemp("guard") / "000", TEXTS)


def test_the_guard_gives_the_float_label_where_int8_flips(flipping):
    artifact, float_labels = flipping
    with kolite.load(artifact, variant="int8-static", guard=False) as unguarded:
        assert unguarded.guard is None
        flipped = unguarded.logits(TEXTS).argmax(-1) != float_labels
    assert flipped.any()  # the constructed artifact does flip
    with kolite.load(artifact, variant="int8-static", guard=True) as guarded:
        assert guarded.guard is not None and guarded.guard.tau > 0
        logits = guarded.logits(TEXTS)
        labels = [p[0].label for p in guarded.classify(TEXTS)]
        rerun = guarded.guard.rows_rerun
    with kolite.load(artifact, variant="fp32-opt") as reference:
        float_logits = reference.logits(TEXTS)
    assert np.array_equal(logits.argmax(-1), float_labels)
    assert labels == [reference.labels[i] for i in float_labels]
    assert all(logits[i].tobytes() == float_logits[i].tobytes() for i in np.flatnonzero(flipped))
    assert rerun > 0


def test_guarded_logits_are_bitwise_batch_invariant(flipping):
    artifact, _ = flipping
    with kolite.load(artifact, variant="int8-static", guard=True, threads=1, parallel=2) as model:
        alone = np.stack([model.logits([text])[0] for text in TEXTS])
        for batch_size in (1, 3, 8, 32):
            assert model.logits(TEXTS, batch_size=batch_size).tobytes() == alone.tobytes()
        shuffled = list(reversed(TEXTS))
        assert model.logits(shuffled, batch_size=5)[::-1].tobytes() == alone.tobytes()


def test_guard_default_follows_the_measured_rerun_fraction(flipping, tiny_artifact):
    artifact, _ = flipping
    record = kolite.load_manifest(artifact).variants["int8-static"].guard
    with kolite.load(artifact, variant="int8-static") as model:  # guard=None: on only where it is cheap
        assert (model.guard is not None) == (record["rerun_fraction"] <= 0.05)
    with kolite.load(tiny_artifact("004"), variant="int8-static") as tagger:  # NER: re-runs most sentences
        assert kolite.load_manifest(tiny_artifact("004")).variants["int8-static"].guard["rerun_fraction"] > 0.05
        assert tagger.guard is None
    with kolite.load(artifact, variant="fp32", guard=True) as plain:
        assert plain.guard is None  # a float variant is its own answer
    with pytest.raises(KoliteError, match="guard must be"):
        kolite.load(artifact, guard="yes")


def test_guard_true_on_an_artifact_without_tau_is_a_clear_error(tiny_artifact, tmp_path):
    artifact = tmp_path / "old"
    shutil.copytree(tiny_artifact("000"), artifact)
    data = json.loads((artifact / "manifest.json").read_text(encoding="utf-8"))
    data["variants"]["int8-static"].pop("guard")
    (artifact / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KoliteError, match="re-export"):
        kolite.load(artifact, variant="int8-static", guard=True)
    with kolite.load(artifact, variant="int8-static") as model:
        assert model.guard is None


def test_ner_guard_rows_get_float_outputs(tiny_artifact, shared_data):
    """NER: a sentence is re-run when int8 error could change its entities; those carry the float graph's logits."""
    from kolite_export.validation_data import load_validation_set

    artifact = tiny_artifact("004")
    texts = list(load_validation_set("klue-ner", 40, shared_data).texts)
    with kolite.load(artifact, variant="int8-static", guard=True) as guarded, kolite.load(
        artifact, variant="fp32-opt"
    ) as reference:
        encoded = guarded.encode(texts, guarded.options(aggregation="average"))
        views = guarded.guard_views(encoded)
        got = guarded.run(encoded)
        assert 0 < guarded.guard.rows_rerun < len(texts)
        floats = reference.run(reference.encode(texts))
        with kolite.load(artifact, variant="int8-static", guard=False) as unguarded:
            plain = unguarded.run(unguarded.encode(texts))
    from kolite.guard import entities_could_change

    tau = guarded.guard.tau
    assert all(view is not None and view.single_window for view in views)
    pooled = guarded.guard.record.pooled_tau
    uncertain = [entities_could_change(p, view, tau, pooled) for p, view in zip(plain, views, strict=True)]
    for index, output in enumerate(got):
        want = floats[index] if uncertain[index] else plain[index]
        assert output.tobytes() == want.tobytes()


def test_ner_guard_re_runs_only_what_the_aggregation_could_change(tiny_artifact, shared_data):
    """``none`` answers every token's label: the token-margin rule. ``simple``/``first`` read fewer decisions than
    every token margin (a B-/I- waver that moves no boundary, a word's later subwords), so they re-run no more;
    raw logits (use unknown) get every check. Each aggregation's entities stay the float graph's."""
    from kolite.guard import decision_margins
    from kolite_export.validation_data import load_validation_set

    artifact = tiny_artifact("004")
    texts = list(load_validation_set("klue-ner", 40, shared_data).texts)
    with kolite.load(artifact, variant="int8-static", guard=False) as unguarded:
        plain = unguarded.run(unguarded.encode(texts))
    with kolite.load(artifact, variant="int8-static", guard=True) as guarded, kolite.load(
        artifact, variant="fp32-opt"
    ) as reference:
        token_uncertain = int((decision_margins(plain) < guarded.guard.tau).sum())
        reruns = {}
        for aggregation in ("none", "simple", "first", "average", "max"):
            before = guarded.guard.rows_rerun
            got = guarded.tag(texts, aggregation=aggregation)
            reruns[aggregation] = guarded.guard.rows_rerun - before
            want = reference.tag(texts, aggregation=aggregation)
            spans = [[(e.label, e.start, e.end) for e in row] for row in got]
            assert spans == [[(e.label, e.start, e.end) for e in row] for row in want]  # scores: int8's where certain
        before = guarded.guard.rows_rerun
        guarded.token_logits(texts)
        raw_reruns = guarded.guard.rows_rerun - before
    assert reruns["none"] == token_uncertain > 0
    assert reruns["simple"] <= token_uncertain and reruns["first"] <= token_uncertain
    assert raw_reruns >= max(reruns.values())


def _scheme(*labels: str):
    from kolite.aggregation import LabelScheme

    return LabelScheme.of(list(labels))


def test_a_b_i_waver_is_certain_only_where_no_group_boundary_moves():
    from kolite.aggregation import groups_fixed

    scheme = _scheme("O", "B-PS", "I-PS", "B-LC", "I-LC")
    fixed = np.zeros((3, 5), bool)
    fixed[[0, 1, 2], [0, 1, 2]] = True  # O, B-PS, I-PS
    assert groups_fixed(fixed, scheme)
    start = fixed.copy()
    start[1, 2] = True  # the entity's first token: B-PS or I-PS, after O → a new group either way
    assert groups_fixed(start, scheme)
    inside = fixed.copy()
    inside[2, 1] = True  # after a PS token: B-PS would split the entity in two
    assert not groups_fixed(inside, scheme)
    retype = fixed.copy()
    retype[0, 3] = True  # O or B-LC: an entity could appear
    assert not groups_fixed(retype, scheme)
    first = np.zeros((1, 5), bool)
    first[0, [1, 2]] = True
    assert groups_fixed(first, scheme)


def test_reachable_labels_follow_what_each_aggregation_reads():
    from kolite.guard import pooled_word_uncertain, reachable_labels

    # tokens: a word of 3 tokens (the last two subwords), then a one-token word; 3 labels
    logits = np.array([[4.0, 0.0, 0.0], [0.0, 1.0, 1.05], [3.0, 0.0, 0.0], [0.0, 5.0, 0.0]], np.float32)
    subword = np.array([False, True, True, False])
    simple = reachable_labels(logits, subword, "simple", tau=0.1)
    assert simple.sum(axis=1).tolist() == [1, 2, 1, 1]  # token 1's top two are 0.05 apart
    first = reachable_labels(logits, subword, "first", tau=0.1)
    assert first.shape == (2, 3) and first.sum(axis=1).tolist() == [1, 1]  # a later subword is never read
    # max: three tokens whose best scores are within e^(2τ) of each other, the third with another label
    near = np.log(np.array([[0.90, 0.05, 0.05], [0.89, 0.06, 0.05], [0.05, 0.07, 0.88]], np.float64))
    reach = reachable_labels(near.astype(np.float32), np.array([False, True, True]), "max", tau=0.05)
    assert reach.shape == (1, 3) and reach[0, 0] and reach[0, 2]
    assert pooled_word_uncertain(near.astype(np.float32), np.arange(3), np.array([False, True, True]), tau=0.05)
    average = reachable_labels(near.astype(np.float32), np.array([False, True, True]), "average", tau=0.05)
    assert average[0].tolist() == [True, False, False]  # pooled 0.61 vs 0.33: far apart


def test_served_bytes_equal_api_bytes_with_the_guard_on(flipping):
    from server.live_server import serve_subprocess

    artifact, float_labels = flipping
    with kolite.load(artifact, variant="int8-static", guard=True) as model:
        expected = [[p.to_dict() for p in predictions] for predictions in model.classify(TEXTS, top_k=None)]
    with serve_subprocess([artifact], "--variant", "int8-static", "--guard") as server, server.client() as client:
        got = client.post("/predict", json={"inputs": TEXTS}).json()
        metrics = client.get("/metrics").text
        models = client.get("/models").json()["models"]
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert [max(p, key=lambda x: x["score"])["label"] for p in got] == [model.labels[i] for i in float_labels]
    assert models[0]["guard"] is True
    guarded = [line for line in metrics.splitlines() if line.startswith("kolite_guarded_rows_total{")]
    assert guarded and float(guarded[0].rsplit(" ", 1)[1]) > 0


def test_cli_predict_and_label_take_guard_flags(flipping, tmp_path):
    import subprocess
    import sys

    artifact, float_labels = flipping
    labels = kolite.load_manifest(artifact).labels
    run = [sys.executable, "-m", "kolite.cli"]
    texts = TEXTS[:10]
    outputs = {}
    for flag in ("--guard", "--no-guard"):
        result = subprocess.run([*run, "predict", flag, "--variant", "int8-static", str(artifact), *texts],
                                capture_output=True, text=True, check=True)
        outputs[flag] = [json.loads(line)["predictions"][0]["label"] for line in result.stdout.splitlines()]
    assert outputs["--guard"] == [labels[i] for i in float_labels[:10]]
    assert outputs["--no-guard"] != outputs["--guard"]
    source = tmp_path / "in.csv"
    source.write_text("document\n" + "\n".join(t or "빈칸" for t in texts) + "\n", encoding="utf-8")
    for flag in ("--guard", "--no-guard"):
        out = tmp_path / f"out{flag}.csv"
        subprocess.run([*run, "label", str(source), "--model", str(artifact), "--out", str(out), flag, "--variant",
                        "int8-static", "--workers", "1"], capture_output=True, text=True, check=True)
        rows = out.read_text(encoding="utf-8").splitlines()[1:]
        outputs[f"label{flag}"] = [row.split(",")[1] for row in rows]
    assert outputs["label--guard"] == outputs["--guard"] and outputs["label--no-guard"] == outputs["--no-guard"]
    info = subprocess.run([*run, "info", str(artifact)], capture_output=True, text=True, check=True).stdout
    assert "guard int8-static: tau=" in info and "re-runs" in info


def test_a_long_text_is_uncertain_when_its_pooled_windows_are():
    """Windows that each look certain can pool to a near tie (one says positive, one negative): all are re-run."""
    from kolite.guard import FidelityGuard, GuardRecord

    guard = FidelityGuard(GuardRecord(tau=0.1, float_variant="fp32-opt"), float_session=None)
    int8 = [np.array([3.0, 0.0], np.float32), np.array([0.0, 3.05], np.float32), np.array([2.0, 0.0], np.float32)]
    floats = {(1,): np.array([9.0, 9.0], np.float32), (2,): np.array([8.0, 8.0], np.float32)}
    got = guard.apply([[1], [2], [3]], int8, lambda rows: [floats[tuple(r)] for r in rows], window_counts=[2, 1])
    assert [g.tolist() for g in got] == [[9.0, 9.0], [8.0, 8.0], [2.0, 0.0]]
    assert guard.rows_rerun == 2
    alone = FidelityGuard(GuardRecord(tau=0.1, float_variant="fp32-opt"), float_session=None)
    assert alone.apply([[1], [2], [3]], int8, lambda rows: [], window_counts=[1, 1, 1]) == int8  # texts of one window


def test_external_data_is_found_in_subgraphs_and_garbage_is_a_clear_error():
    from kolite.graph_bytes import external_tensors
    from kolite.providers import cpu_device
    from kolite.session import build_session_options, open_session
    from onnx import TensorProto, helper

    hidden = helper.make_tensor("hidden", TensorProto.FLOAT, [1], [0.0])
    hidden.data_location = TensorProto.EXTERNAL
    hidden.ClearField("float_data")
    hidden.external_data.add(key="location", value="../../etc/passwd")
    branch = helper.make_graph([helper.make_node("Identity", ["hidden"], ["y"])], "then", [],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [hidden])
    plain = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "else", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    node = helper.make_node("If", ["c"], ["logits"], then_branch=branch, else_branch=plain)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    data = model.SerializeToString()
    assert external_tensors(data) == ["hidden"]
    with pytest.raises(KoliteError, match="external data"):
        open_session(data, build_session_options(1), cpu_device())
    with pytest.raises(KoliteError, match="could not load"):
        open_session(b"\x0a\xff\xff\xff\xff\x0f", build_session_options(1), cpu_device())


def test_a_word_whose_pooled_scores_are_near_a_tie_is_uncertain():
    """average/max pool a word's subword scores: tokens that are each certain can pool to a near tie."""
    from kolite.guard import pooled_word_uncertain

    kept = np.array([1, 2, 3])
    split = np.array([[2.0, 0.0], [0.0, 2.05], [5.0, 0.0]], np.float32)  # tokens 1+2 one word: average is ~tied
    logits = np.vstack([np.zeros((1, 2), np.float32), split, np.zeros((1, 2), np.float32)])
    assert pooled_word_uncertain(logits, kept, np.array([False, True, False]), tau=0.1)
    assert not pooled_word_uncertain(logits, kept, np.array([False, False, False]), tau=0.1)  # single-token words
    agree = np.array([[0, 0], [3.0, 0.0], [2.5, 0.0], [0, 0], [0, 0]], np.float32)
    assert not pooled_word_uncertain(agree, kept, np.array([False, True, False]), tau=0.1)


def test_pooled_words_use_the_pooled_bound_and_tokens_the_gap_bound():
    """Export records τ (the error of a decision's gaps) and τ_pooled (twice the per-logit error, which moves every
    softmax score): a word's pooled scores are checked against the wider one."""
    from kolite.guard import GuardRecord, pooled_word_uncertain

    kept = np.array([0, 1])
    word = np.log(np.array([[0.60, 0.40], [0.45, 0.55]])).astype(np.float32)  # pooled 0.525 / 0.475: ×1.105
    subword = np.array([False, True])
    assert not pooled_word_uncertain(word, kept, subword, tau=0.01)
    assert pooled_word_uncertain(word, kept, subword, tau=0.01, tau_pooled=0.2)
    record = GuardRecord.from_manifest({"tau": 0.01, "tau_pooled": 0.2, "float_variant": "fp32-opt"})
    assert record is not None and (record.tau, record.pooled_tau) == (0.01, 0.2)
    legacy = GuardRecord.from_manifest({"tau": 0.3, "float_variant": "fp32-opt"})
    assert legacy is not None and legacy.pooled_tau == 0.3  # artifacts from before: one τ for both
    with pytest.raises(KoliteError, match="tau_pooled"):
        GuardRecord.from_manifest({"tau": 0.01, "tau_pooled": float("nan"), "float_variant": "fp32-opt"})


def test_the_guards_float_session_lets_idle_threads_sleep_unless_the_caller_decides(flipping):
    # A float pool left spinning after each short re-run took a core from the next call's int8 pass.
    artifact, _ = flipping

    def spinning(model) -> str:
        options = model.guard.session.session.get_session_options()
        return options.get_session_config_entry("session.intra_op.allow_spinning")

    with kolite.load(artifact, variant="int8-static", guard=True, threads=2) as model:
        assert spinning(model) == "0"
    with kolite.load(artifact, variant="int8-static", guard=True, threads=2,
                     session_options={"session.intra_op.allow_spinning": "1"}) as model:
        assert spinning(model) == "1"


def test_classification_margins_all_at_once_equal_row_by_row():
    from kolite.guard import decision_margins

    rows = [np.random.default_rng(seed).standard_normal(6).astype(np.float32) for seed in range(40)]
    one_by_one = np.concatenate([decision_margins([row[None, :]]) for row in rows])  # 2-D: the loop path
    assert decision_margins(rows).tobytes() == one_by_one.tobytes()
