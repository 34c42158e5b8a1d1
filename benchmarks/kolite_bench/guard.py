"""Fidelity guard study: label/entity agreement with PyTorch unguarded vs guarded, the share of rows re-run, and the
memory the float graph costs (docs/guides/fidelity.md).

    # 000 (NSMC test) and 004 (KLUE-NER dev) on the exported seed artifacts; τ measured with export's own method
    python -m kolite_bench.guard agreement /work/main/artifacts/000-koelectra-small-v3-nsmc \
        /work/shared/standins/koelectra-small-v3-nsmc --limit 10000 --json benchmarks/results/guard-000.json
    python -m kolite_bench.guard agreement /work/main/artifacts/004-koelectra-small-v3-modu-ner \
        /work/shared/standins/koelectra-small-v3-modu-ner --json benchmarks/results/guard-004.json
    # resident memory of a loaded model with the guard off and on (each in a fresh process)
    python -m kolite_bench.guard rss ARTIFACT

Artifacts exported before the guard (manifest schema 1.1) hold no τ: ``agreement`` copies the artifact to a scratch
folder and records τ there exactly as ``kolite export`` does (``kolite_export.guard_threshold``: held-out texts that
neither the gate nor calibration read), then loads the copy with ``kolite.load(guard=False/True)``.

Agreement is measured through the runtime's own decode: the PyTorch module runs on the runtime's token ids, and its
logits go through the same ``model.decode`` as the ONNX ones, so a difference can only come from the logits. No
speed is measured here (the guard's cost is its re-run fraction; speed ratios belong to ``kolite bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["agreement", "main", "prepare_artifact", "rss"]

SCRATCH = Path(os.environ.get("KOLITE_GUARD_SCRATCH", "/tmp/kolite-guard"))
CHUNK = 5000  # texts per kolite call (under the API's max_items)


def prepare_artifact(artifact: Path, out: Path, shared: str | None) -> Path:
    """A copy of ``artifact`` whose int8 variants carry the guard record ``kolite export`` would write."""
    from kolite.manifest import SCHEMA_VERSION, load_manifest
    from kolite_export.calibration import calibration_texts
    from kolite_export.guard_threshold import guard_texts, with_guards
    from kolite_export.validation_data import load_validation_set

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(artifact, out)
    manifest = load_manifest(out)
    data_spec = manifest.validation["data"].split(":")[0]
    validation = load_validation_set(data_spec, manifest.validation["texts"], shared)
    static = manifest.variants.get("int8-static")
    count = int(static.recipe.get("calibration_texts", 512)) if static else 512
    calibration = calibration_texts(data_spec, validation, count, shared)
    held_out = 1000 if manifest.task == "token-classification" else 4000
    source, texts = guard_texts(data_spec, validation, calibration, held_out, shared)
    variants = with_guards(
        manifest.variants, out, out / manifest.tokenizer.file, manifest.max_length, manifest.pad_token_id,
        manifest.problem_type == "multi_label_classification", texts, source,
    )
    updated = replace(manifest, variants=variants, schema_version=SCHEMA_VERSION)
    (out / "manifest.json").write_text(updated.to_json(), encoding="utf-8")
    return out


def torch_outputs(checkpoint: Any, sequences: list[list[int]], pad_token_id: int, batch_size: int = 64) -> list:
    """The PyTorch module's logits per sequence on exactly the runtime's token ids (padding cut off per token)."""
    import torch
    from kolite.batching import pad_batch

    order = np.argsort([len(s) for s in sequences], kind="stable")
    results: list[Any] = [None] * len(sequences)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            feeds = pad_batch([sequences[i] for i in rows], pad_token_id)
            feeds.setdefault("token_type_ids", np.zeros_like(feeds["input_ids"]))
            args = [torch.from_numpy(feeds[name]) for name in checkpoint.inputs]
            logits = checkpoint.module(*args).float().numpy()
            for row, index in enumerate(rows):
                results[index] = logits[row, : len(sequences[index])] if logits.ndim == 3 else logits[row]
    return results


def _load_texts(data_spec: str, limit: int | None, shared: str | None) -> tuple[str, tuple[str, ...]]:
    from kolite_export.validation_data import load_validation_set

    data = load_validation_set(data_spec, limit, shared)
    return data.name, data.texts


def _run_chunks(model: Any, texts: tuple[str, ...], aggregation: str | None = None) -> tuple[Any, list]:
    """(encoded, outputs) over all texts, in chunks the API accepts (NER: encoded for ``aggregation``, which
    decides whether the guard checks pooled words)."""
    from kolite.tokenization import Encoded

    options = None if aggregation is None else model.options(aggregation=aggregation)
    encoded_parts, outputs = [], []
    for start in range(0, len(texts), CHUNK):
        encoded = model.encode(list(texts[start : start + CHUNK]), options)
        encoded_parts.append(encoded)
        outputs.extend(model.run(encoded))
    return Encoded.join(encoded_parts), outputs


def _classification_numbers(reference: list, outputs: list) -> dict[str, Any]:
    ref = np.array([r.argmax() for r in reference])
    out = np.array([o.argmax() for o in outputs])
    flips = int((ref != out).sum())
    return {"label_agreement": 1 - flips / len(ref), "label_flips": flips}


def _entity_numbers(model: Any, encoded: Any, reference: list, outputs: list) -> dict[str, Any]:
    """Per aggregation: sentences whose entity list equals the PyTorch one, and entity micro-F1 against it."""
    from kolite.aggregation import AGGREGATIONS

    numbers = {}
    for aggregation in AGGREGATIONS:
        options = model.options(aggregation=aggregation)
        want = model.decode(reference, encoded, options)
        got = model.decode(outputs, encoded, options)
        same = true_pos = n_ref = n_out = 0
        for w, g in zip(want, got, strict=True):
            w_set = {(e.start, e.end, e.label) for e in w}
            g_set = {(e.start, e.end, e.label) for e in g}
            same += w_set == g_set and len(w) == len(g)
            true_pos += len(w_set & g_set)
            n_ref += len(w_set)
            n_out += len(g_set)
        numbers[aggregation] = {
            "sentence_agreement": same / len(want),
            "sentences_differing": len(want) - same,
            "entity_f1": 1.0 if n_ref + n_out == 0 else 2 * true_pos / (n_ref + n_out),
        }
    return numbers


class _Scorer:
    """Agreement of outputs with the PyTorch reference: labels (classification) or entities per aggregation."""

    def __init__(self, model: Any, encoded: Any, reference: list, per_token: bool) -> None:
        self.model, self.encoded, self.reference, self.per_token = model, encoded, reference, per_token

    def __call__(self, outputs: list) -> dict[str, Any]:
        if self.per_token:
            return _entity_numbers(self.model, self.encoded, self.reference, outputs)
        return _classification_numbers(self.reference, outputs)


def _decision_tokens_margins(outputs: list, encoded: Any) -> np.ndarray:
    """NER variant of the decision margin: only tokens whose label the decode reads (no [CLS]/[SEP])."""
    margins = np.empty(len(outputs))
    for index, output in enumerate(outputs):
        inner = output[1:-1] if len(output) > 2 else output
        top2 = np.partition(inner, -2, axis=-1)[..., -2:] if len(inner) else np.zeros((0, 2))
        margins[index] = float((top2[..., 1] - top2[..., 0]).min()) if len(inner) else np.inf
    return margins


def agreement(artifact: Path, checkpoint_dir: Path, limit: int | None, shared: str | None,
              int8_variants: tuple[str, ...] = ("int8-static", "int8")) -> dict[str, Any]:
    """Unguarded and guarded agreement with PyTorch, re-run fraction at τ, and the float graph's own agreement
    (the float graph always runs: it is every guard's fallback)."""
    import kolite
    from kolite.guard import decision_margins
    from kolite_export.layouts import load_checkpoint

    started = time.perf_counter()
    _say(f"measuring tau on held-out texts into {SCRATCH / artifact.name}")
    scratch = prepare_artifact(artifact, SCRATCH / artifact.name, shared)
    manifest = kolite.load_manifest(scratch)
    data_spec = manifest.validation["data"].split(":")[0]
    data_name, texts = _load_texts(data_spec, limit, shared)
    per_token = manifest.task == "token-classification"
    result: dict[str, Any] = {"artifact": str(artifact), "data": data_name, "texts": len(texts), "variants": {}}
    checkpoint = load_checkpoint(checkpoint_dir)
    float_outputs: dict[str, list] = {}
    encoded = reference = None
    for name in ("fp32-opt", *int8_variants):
        variant = manifest.variants.get(name)
        if variant is None or not variant.passed:
            continue
        with kolite.load(scratch, variant=name, guard=False) as model:
            _say(f"{name} on {len(texts)} texts")
            encoded, outputs = _run_chunks(model, texts)
            if reference is None:
                _say(f"PyTorch on {len(encoded.sequences)} sequences")
                reference = torch_outputs(checkpoint, encoded.sequences, manifest.pad_token_id)
            entry: dict[str, Any] = {"guard": variant.guard}
            score = _Scorer(model, encoded, reference, per_token)
            entry["unguarded"] = score(outputs)
            if variant.precision != "int8":
                float_outputs[name] = outputs
                result["variants"][name] = entry
                continue
            tau = variant.guard["tau"]
            fallback = float_outputs[variant.guard["float_variant"]]
            margins = decision_margins(outputs)
            uncertain = margins < tau
            entry["rerun_fraction"] = float(uncertain.mean())
            guarded = [f if u else o for o, f, u in zip(outputs, fallback, uncertain, strict=True)]
            entry["guarded"] = score(guarded)
            if per_token:  # the other definition: only tokens the decode reads
                inner = _decision_tokens_margins(outputs, encoded) < tau
                entry["rerun_fraction_decoded_tokens_only"] = float(inner.mean())
                alt = [f if u else o for o, f, u in zip(outputs, fallback, inner, strict=True)]
                entry["guarded_decoded_tokens_only"] = score(alt)
                entry["rerun_fraction_by_tau"] = {
                    str(t): float((margins < t).mean()) for t in (0.05, 0.1, 0.2, 0.3, round(tau, 4))
                }
        _say(f"{name} guarded by the runtime")
        with kolite.load(scratch, variant=name, guard=True) as model:  # what is served
            if per_token:
                entry.update(_served_ner(model, texts, reference, guarded))
            else:
                runtime_guarded = _run_chunks(model, texts)[1]
                entry["runtime_guard_equals_offline"] = _same_bytes(runtime_guarded, guarded)
                entry["runtime_rows_rerun"] = model.guard.rows_rerun
        result["variants"][name] = entry
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _same_bytes(left: list, right: list) -> bool:
    return all(a.tobytes() == b.tobytes() for a, b in zip(left, right, strict=True))


def _served_ner(model: Any, texts: tuple[str, ...], reference: list, offline_guarded: list) -> dict[str, Any]:
    """The runtime guard per aggregation, as served: ``none`` re-runs on token margins alone (must equal the offline
    token-margin guard bitwise); ``simple``/``first``/``average``/``max`` re-run a sentence only when int8 error
    could change its entities under that aggregation (``kolite.guard.entities_could_change``)."""
    from kolite.aggregation import AGGREGATIONS

    served: dict[str, Any] = {}
    equal = None
    for aggregation in AGGREGATIONS:
        before = model.guard.rows_rerun
        encoded, outputs = _run_chunks(model, texts, aggregation)
        numbers = _entity_numbers(model, encoded, reference, outputs)[aggregation]
        served[aggregation] = {**numbers, "rerun_fraction": (model.guard.rows_rerun - before) / len(outputs)}
        if aggregation == "none":
            equal = _same_bytes(outputs, offline_guarded)
    return {"guarded_as_served": served, "runtime_guard_equals_offline": equal}


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


_RSS_PROBE = """
import json, sys, kolite
model = kolite.load(sys.argv[1], guard={guard})
model.predict(["워밍업 문장입니다"] * 64)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({{"variant": model.variant.name, "guard": model.guard is not None,
                  "rss_mb": int(status["VmRSS"].split()[0]) / 1024, "hwm_mb": int(status["VmHWM"].split()[0]) / 1024}}))
"""


def rss(artifact: Path) -> dict[str, Any]:
    """Resident memory after loading and one 64-text call, guard off vs on, each in a fresh process."""
    scratch = SCRATCH / artifact.name
    if not (scratch / "manifest.json").is_file():
        raise SystemExit(f"run `agreement` first (it prepares {scratch})")
    runs = {}
    for guard in (False, True):
        out = subprocess.run([sys.executable, "-c", _RSS_PROBE.format(guard=guard), str(scratch)], check=True,
                             capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        runs["on" if guard else "off"] = json.loads(out.stdout.strip().splitlines()[-1])
    runs["delta_rss_mb"] = round(runs["on"]["rss_mb"] - runs["off"]["rss_mb"], 1)
    runs["artifact"] = str(artifact)
    return runs


def _machine() -> dict[str, Any]:
    from kolite_bench.env import cpu_model, load_average

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version(), "commit": commit,
            "load_average": load_average()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kolite_bench.guard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    study = sub.add_parser("agreement")
    study.add_argument("artifact", type=Path)
    study.add_argument("checkpoint", type=Path)
    study.add_argument("--limit", type=int, default=None, help="texts spread over the set (default: all)")
    study.add_argument("--shared", default=os.environ.get("KOLITE_SHARED"))
    study.add_argument("--json", type=Path)
    study.add_argument("--int8-variants", default="int8-static,int8",
                       help="comma list of int8 variants to study (the float graph always runs)")
    memory = sub.add_parser("rss")
    memory.add_argument("artifact", type=Path)
    memory.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    started = datetime.now(timezone.utc)
    machine_before = _machine()
    if args.command == "agreement":
        variants = tuple(v for v in args.int8_variants.split(",") if v)
        body = agreement(args.artifact, args.checkpoint, args.limit, args.shared, variants)
    else:
        body = rss(args.artifact)
    result = {
        "run_id": f"guard-{args.command}-{started.strftime('%Y%m%dT%H%M%SZ')}",
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_before,
        "load_average_after": _machine()["load_average"],
        **body,
    }
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
