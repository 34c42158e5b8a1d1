"""Every runtime entry point works in a process where torch & co. cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

BLOCKED = ("torch", "transformers", "optimum", "kolite_export", "kolite_bench")

# Runs in a fresh interpreter: a meta-path finder refuses the blocked packages before anything is imported.
SANDBOX = textwrap.dedent(
    """
    import importlib, importlib.abc, importlib.util, json, pkgutil, sys
    BLOCKED = tuple(json.loads(sys.argv[1]))

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"{name} is blocked in the torch-free test", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    try:
        import torch  # noqa: F401
        raise SystemExit("the blocker did not block torch")
    except ImportError:
        pass

    import kolite
    report = {"modules": [], "optional_missing": []}
    for info in pkgutil.walk_packages(kolite.__path__, "kolite."):
        try:
            importlib.import_module(info.name)
            report["modules"].append(info.name)
        except ImportError as exc:
            root = (exc.name or "").split(".")[0]
            if root in BLOCKED or root == "kolite" or importlib.util.find_spec(root) is not None:
                raise
            report["optional_missing"].append(f"{info.name}: {root}")

    arts = json.loads(sys.argv[2])
    tmp = sys.argv[3]
    classifier = kolite.load(arts["000"])
    report["classify"] = [[p.to_dict() for p in r] for r in classifier.classify(["영화 최고", ""], top_k=None)]
    report["logits_shape"] = list(classifier.logits(["별로"]).shape)
    report["sroberta"] = kolite.load(arts["003"]).classify("사실이다")[0].label
    tagger = kolite.load(arts["004"])
    report["tag"] = {a: len(tagger.tag("홍길동은 서울에 산다", aggregation=a, ignore_labels=()))
                     for a in ("none", "simple", "first", "average", "max")}

    from kolite.cli import build_parser, main
    with open(f"{tmp}/in.jsonl", "w", encoding="utf-8") as handle:
        handle.write('{"id": 1, "text": "좋다"}\\n{"id": 2}\\n')
    report["predict_rc"] = main(["predict", arts["004"], "-i", f"{tmp}/in.jsonl", "-o", f"{tmp}/out.jsonl"])
    report["predict_out"] = open(f"{tmp}/out.jsonl", encoding="utf-8").read().splitlines()
    report["info_rc"] = main(["info", arts["000"]])
    report["export_rc"] = main(["export", "x"])

    if importlib.util.find_spec("fastapi") is not None:
        from kolite.server.app import create_app
        from kolite.server.cli import build_config
        args = build_parser().parse_args(["serve", arts["000"], "--no-warmup"])
        report["serve_app"] = type(create_app(build_config(args))).__name__
    if importlib.util.find_spec("pyarrow") is not None:
        report["label_rc"] = main(["label", f"{tmp}/in.jsonl", "--model", arts["000"], "--out",
                                   f"{tmp}/labelled.jsonl", "--text-column", "text"])
    blocked_loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    report["blocked_loaded"] = blocked_loaded
    print("REPORT " + json.dumps(report, ensure_ascii=False))
    """
)


def test_runtime_entry_points_work_without_torch(tiny_artifact, tmp_path):
    arts = {seed: str(tiny_artifact(seed)) for seed in ("000", "003", "004")}
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SANDBOX, json.dumps(BLOCKED), json.dumps(arts), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("REPORT ", 1)[1])
    assert {"kolite.api", "kolite.cli", "kolite.session", "kolite.token_classification"} <= set(report["modules"])
    assert report["blocked_loaded"] == []
    assert len(report["classify"]) == 2 and report["logits_shape"] == [1, 2] and report["sroberta"]
    assert all(count > 0 for count in report["tag"].values())
    assert report["predict_rc"] == 0 and len(report["predict_out"]) == 2
    assert "error" in json.loads(report["predict_out"][1]) and "entities" in json.loads(report["predict_out"][0])
    assert report["info_rc"] == 0
    assert report["export_rc"] == 2 and "pip install 'kolite[export]'" in result.stderr
    assert report.get("serve_app", "FastAPI") == "FastAPI"
    assert report.get("label_rc", 0) == 0
