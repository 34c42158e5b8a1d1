"""kolite.parallel: N one-thread sessions give exactly the logits of one session, batch for batch."""

from __future__ import annotations

import numpy as np
import pytest
from kolite.batching import pad_batch
from kolite.manifest import load_manifest
from kolite.parallel import ParallelSessions
from kolite.session import CPU_DISABLED_OPTIMIZERS, build_session_options

TEXTS = ["영화 정말 재미있었다", "별로", "", "배우들 연기가 최고였고 음악도 좋았다", "ㅋㅋ", "다시 보고 싶다"] * 7


@pytest.mark.parametrize("variant", ["fp32", "int8-static"])
def test_parallel_sessions_match_one_session_bitwise(tiny_artifact, variant):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    artifact = tiny_artifact("000")
    manifest = load_manifest(artifact)
    tokenizer = Tokenizer.from_file(str(artifact / "tokenizer.json"))
    ids = [e.ids for e in tokenizer.encode_batch(TEXTS)]
    batches = []
    for start in range(0, len(ids), 4):  # file order: every batch padded differently
        feeds = pad_batch(ids[start : start + 4], manifest.pad_token_id)
        feeds.setdefault("token_type_ids", np.zeros_like(feeds["input_ids"]))
        batches.append({name: feeds[name] for name in manifest.inputs})
    path = artifact / manifest.variants[variant].file
    single = ort.InferenceSession(
        str(path), build_session_options(1), ["CPUExecutionProvider"], disabled_optimizers=list(CPU_DISABLED_OPTIMIZERS)
    )
    expected = [single.run(["logits"], feeds)[0] for feeds in batches]
    parallel = ParallelSessions(path.read_bytes(), 3, build_session_options)
    got = parallel.run(batches)
    assert len(got) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


def test_parallel_sessions_surface_a_failing_batch(tiny_artifact):
    artifact = tiny_artifact("000")
    manifest = load_manifest(artifact)
    parallel = ParallelSessions((artifact / manifest.variants["fp32"].file).read_bytes(), 2, build_session_options)
    bad = {"input_ids": np.zeros((1, 3), dtype=np.int32)}  # wrong dtype, missing inputs
    with pytest.raises(Exception, match=r"(?i)input"):
        parallel.run([bad, bad, bad])


@pytest.mark.parametrize("variant", ["fp32", "int8-static"])
def test_throughput_mode_gives_the_latency_mode_answers(tiny_artifact, variant):
    import kolite

    texts = [f"{i}번째 리뷰 " + "재밌다 " * (i % 9) for i in range(70)]
    with kolite.load(tiny_artifact("000"), variant=variant, threads=2, parallel=3) as wide:
        assert wide.session.parallel == 3
        fast = wide.logits(texts, batch_size=4)  # 18 calls spread over 3 one-thread sessions
        one = wide.logits(texts[:3], batch_size=4)  # one call: the 2-thread session
    with kolite.load(tiny_artifact("000"), variant=variant, threads=1, parallel=0) as plain:
        assert plain.session.parallel == 0
        expected = plain.logits(texts, batch_size=4)
    assert fast.tobytes() == expected.tobytes() and one.tobytes() == expected[:3].tobytes()


def test_throughput_mode_defaults(tiny_artifact):
    import kolite
    from kolite.errors import KoliteError

    with kolite.load(tiny_artifact("000"), variant="fp32", threads=2) as model:
        assert model.session.parallel == 2 and model.session._workers is None  # made on first multi-call run
        model.logits(["하나", "둘", "셋"], batch_size=1)
        assert model.session._workers is not None
    with kolite.load(tiny_artifact("000"), variant="fp32", threads=1) as model:
        assert model.session.parallel == 1
    with pytest.raises(KoliteError, match="parallel"):
        kolite.load(tiny_artifact("000"), variant="fp32", parallel=-1)


class _Spy:
    """Wraps an onnxruntime session and counts its runs (its answers are the session's own)."""

    def __init__(self, session):
        self.session, self.runs = session, 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self.session.run(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.session, name)


@pytest.mark.parametrize("variant", ["fp32", "int8-static"])
def test_small_single_calls_run_on_one_thread_and_answer_the_same(tiny_artifact, variant, monkeypatch):
    import kolite
    import kolite.session

    texts = [f"{i}번째 리뷰 " + "재밌다 " * (i % 9) for i in range(12)]
    with kolite.load(tiny_artifact("000"), variant=variant, threads=1, parallel=0) as plain:
        expected = plain.logits(texts, batch_size=4)
    with kolite.load(tiny_artifact("000"), variant=variant, threads=2) as model:
        session = model.session
        assert session.one_thread_tokens > 100  # a tiny graph: any short call qualifies
        wide = session.__dict__["session"] = _Spy(session.session)
        first = model.logits(texts[:1])  # opens the one-thread session in the background; runs on the wide one
        assert wide.runs == 1 and session.wait_for_one_thread_session(timeout=60)
        single = [model.logits([text]) for text in texts]
        lane = session._lane
        assert wide.runs == 1 and lane is not None and session._workers is None  # one extra session, not two
        batched = model.logits(texts, batch_size=4)  # several calls: the workers, the lane adopted as the first
        assert session._workers.sessions[0] is lane and len(session._workers.sessions) == 2
        monkeypatch.setattr(session, "one_thread_tokens", 3)  # now over budget: the two-thread session
        over = model.logits(texts[:4], batch_size=4)
        assert wide.runs == 2
    assert first.tobytes() == expected[:1].tobytes() and np.concatenate(single).tobytes() == expected.tobytes()
    assert batched.tobytes() == expected.tobytes() and over.tobytes() == expected[:4].tobytes()


def test_only_small_graphs_get_the_one_thread_lane(tiny_artifact, monkeypatch):
    import kolite
    import kolite.session

    artifact = tiny_artifact("000")
    with kolite.load(artifact, variant="fp32", threads=2, parallel=0) as off:
        assert off.session.one_thread_tokens == 0  # no throughput mode: the caller chose one session
    monkeypatch.setattr(kolite.session, "ONE_THREAD_MAX_WEIGHTS", 1000)  # the tiny graph now counts as large
    with kolite.load(artifact, variant="fp32", threads=2) as large:
        assert large.session.one_thread_tokens == 0
        large.logits(["짧은 글"])
        assert not large.session.wait_for_one_thread_session(timeout=60) and large.session._lane_opener is None


def test_a_process_that_exits_while_the_one_thread_session_opens_exits_cleanly(tiny_artifact):
    import subprocess
    import sys

    # The session opens in a background thread; exiting under it once aborted the process ("terminate called").
    script = ("import kolite, sys; m = kolite.load(sys.argv[1], variant='int8-static', threads=2); "
              "print(m.logits(['짧은 글']).shape)")
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", script, str(tiny_artifact("000"))], capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0 and done.stdout.strip() == "(1, 2)", done.stderr[-500:]
