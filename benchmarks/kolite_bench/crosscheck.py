"""A second, deliberately simple speed harness, to check ``kolite bench`` against: plain loops in one process.

``python -m kolite_bench.crosscheck --artifact A [--artifact B] --openvino OV_FOLDER [--optimum OPT_FOLDER]
--texts 2000 --rounds 4`` (``--data klue-ner`` for a token-classification artifact such as 004: per-token logits;
``--guard on|off|auto``)

Nothing from the bench's runner, planner or contenders is used. Each contender is loaded once, in its own
process (so no runtime's idle spinning threads share the cores with another's timed work), and only one works at
a time. Round by round, with the order rotated, each contender runs (1) the sorted pass: its own tokenizer's token
counts, texts sorted by them and cut into batches of ``--batch-size``, (2) the file-order pass: consecutive
batches, and (3) batch 1 over ``--bs1-texts`` texts. Every pass runs once untimed first (OpenVINO: every input
shape on two requests per stream at once, so every stream has compiled it). Figures are quoted as ratios between
contenders *within a round*. Around every timed segment the contender measures the CPU other work took
(``kolite_bench.env.other_work``: the machine's busy CPU minus its own, and hypervisor steal); a round where either
passed ``OTHER_WORK_LIMIT`` cores in some segment is flagged busy. The 1-minute load average is recorded too.

kolite runs through its public API (``kolite.load(...).logits``, its own length planner, its default
data-parallel sessions); OpenVINO runs the bench's cached NNCF int8 IR (``.cache/bench/openvino/<key>/``) with
``PERFORMANCE_HINT=THROUGHPUT`` and an ``AsyncInferQueue`` holding all of a pass's batches, its default inference
precision, the same thread budget. optimum runs the bench's cached int8 export (``.cache/bench/optimum/<key>/int8``:
optimum's default dynamic preset for this CPU) through its ``ORTModelFor...`` class and the transformers tokenizer,
fed numpy arrays padded to each batch's longest (no torch tensors on its path), the same thread budget. With two
kolite artifacts (e.g. with and without a graph pass) their logits
are also compared text by text (bitwise count, max |Δ|, label agreement).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "table"]


def _load1() -> float:
    return round(os.getloadavg()[0], 2)


GUARD = {"auto": None, "on": True, "off": False}


class _Kolite:
    def __init__(self, artifact: str, variant: str, threads: int, guard: str = "off") -> None:
        import kolite

        self.model = kolite.load(artifact, variant=variant, threads=threads, guard=GUARD[guard])
        self.guarded = self.model.guard is not None
        self.name = f"kolite:{Path(artifact).name}:{variant}{'-guarded' if self.guarded else ''}"
        # Token classification answers per token: its raw outputs are ``token_logits`` (one array per text).
        self.outputs = getattr(self.model, "logits", None) or self.model.token_logits

    def sorted_pass(self, texts: list[str], batch_size: int) -> list[np.ndarray]:
        return list(self.outputs(texts, batch_size=batch_size))

    def file_order_pass(self, texts: list[str], batch_size: int) -> list[np.ndarray]:
        chunks = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
        return [row for c in chunks for row in self.outputs(c, batch_size=batch_size)]

    def one(self, text: str) -> None:
        self.outputs([text], batch_size=1)

    def warm(self, texts: list[str], batch_size: int) -> None:
        self.sorted_pass(texts, batch_size)
        self.file_order_pass(texts, batch_size)


class _OpenVINO:
    def __init__(self, folder: str, threads: int) -> None:
        import openvino as ov
        from tokenizers import Tokenizer

        info = json.loads((Path(folder) / "info.json").read_text(encoding="utf-8"))
        self.name = f"openvino-throughput:{info.get('openvino')}"
        self.inputs = info["inputs"]
        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        self.tokenizer.enable_truncation(512)
        self.tokenizer.enable_padding(pad_id=info["pad_token_id"], pad_token=info["pad_token"])
        config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_NUM_THREADS": threads}
        self.compiled = ov.Core().compile_model(Path(folder) / "model.int8.xml", "CPU", config)
        self.streams = int(str(self.compiled.get_property("NUM_STREAMS")))
        self.precision = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.request = self.compiled.create_infer_request()
        self.ov = ov
        self.queues: dict[int, Any] = {}

    def _feeds(self, texts: list[str]) -> dict[str, np.ndarray]:
        enc = self.tokenizer.encode_batch(texts)
        cols = {
            "input_ids": [e.ids for e in enc],
            "attention_mask": [e.attention_mask for e in enc],
            "token_type_ids": [e.type_ids for e in enc],
        }
        return {name: np.asarray(cols[name], dtype=np.int64) for name in self.inputs}

    def _run(self, batches: list[list[str]]) -> list[np.ndarray]:
        queue = self._queue(len(batches))
        out: list[Any] = [None] * len(batches)

        def done(request: Any, index: int) -> None:
            out[index] = request.get_output_tensor(0).data.copy()

        queue.set_callback(done)
        for index, batch in enumerate(batches):
            queue.start_async(self._feeds(batch), userdata=index)
        queue.wait_all()
        return [row for batch in out for row in batch]  # per text (NER: padded to its batch's longest)

    def _queue(self, size: int) -> Any:
        """An AsyncInferQueue of ``size`` requests (every batch of a pass in flight), made once per size during the
        warm-up: creating the requests is set-up, not inference."""
        if size not in self.queues:
            self.queues[size] = self.ov.AsyncInferQueue(self.compiled, max(size, 1))
        return self.queues[size]

    def lengths(self, texts: list[str]) -> list[int]:
        """Real token counts: the tokenizer pads a batch to its longest, so ``len(ids)`` of one call over all texts
        is the same for every text, and a sort on it kept file order (OpenVINO's "sorted" pass was unsorted)."""
        return [sum(e.attention_mask) for e in self.tokenizer.encode_batch(texts)]

    def sorted_pass(self, texts: list[str], batch_size: int) -> list[np.ndarray]:
        order = np.argsort(self.lengths(texts), kind="stable")
        batches = [[texts[i] for i in order[s : s + batch_size]] for s in range(0, len(texts), batch_size)]
        result: list[np.ndarray] = [np.empty(0)] * len(texts)
        for position, row in zip(order, self._run(batches), strict=True):
            result[int(position)] = row
        return result

    def file_order_pass(self, texts: list[str], batch_size: int) -> list[np.ndarray]:
        return self._run([texts[i : i + batch_size] for i in range(0, len(texts), batch_size)])

    def one(self, text: str) -> None:
        self.request.infer(self._feeds([text]))

    def warm(self, texts: list[str], batch_size: int) -> None:
        """Every input shape of both passes on 2 requests per stream at once (twice), then both passes."""
        lengths = self.lengths(texts)
        order = np.argsort(lengths, kind="stable")
        batches = [[texts[i] for i in order[s : s + batch_size]] for s in range(0, len(texts), batch_size)]
        batches += [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
        shapes: dict[tuple[int, ...], dict[str, np.ndarray]] = {}
        for batch in batches:
            feeds = self._feeds(batch)
            shapes.setdefault(feeds["input_ids"].shape, feeds)
        queue = self.ov.AsyncInferQueue(self.compiled, 2 * self.streams)
        for feeds in shapes.values():
            for _ in range(2):  # twice: the crosscheck is allowed to be more generous than the bench
                for _ in range(2 * self.streams):
                    queue.start_async(feeds)
                queue.wait_all()
        self.sorted_pass(texts, batch_size)
        self.file_order_pass(texts, batch_size)


class _Optimum:
    def __init__(self, folder: str, threads: int) -> None:
        from importlib.metadata import version

        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForSequenceClassification, ORTModelForTokenClassification
        from transformers import AutoConfig, AutoTokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        config = AutoConfig.from_pretrained(folder)
        ner = any("ForTokenClassification" in name for name in config.architectures or ())
        model_class = ORTModelForTokenClassification if ner else ORTModelForSequenceClassification
        self.model = model_class.from_pretrained(folder, file_name="model_quantized.onnx", session_options=options)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.name = f"optimum-int8:{version('optimum')}"

    def _logits(self, texts: list[str]) -> np.ndarray:
        feeds = self.tokenizer(texts, padding="longest", truncation=True, max_length=512, return_tensors="np")
        return np.asarray(self.model(**feeds).logits)

    def sorted_pass(self, texts: list[str], batch_size: int) -> list[np.ndarray]:
        lengths = [len(ids) for ids in self.tokenizer(texts, truncation=True, max_length=512)["input_ids"]]
        order = np.argsort(lengths, kind="stable")
        result: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in range(0, len(texts), batch_size):
            indices = order[start : start + batch_size]
            for position, row in zip(indices, self._logits([texts[i] for i in indices]), strict=True):
                result[int(position)] = row
        return result

    def file_order_pass(self, texts: list[str], batch_size: int) -> list[np.ndarray]:
        return [row for i in range(0, len(texts), batch_size) for row in self._logits(texts[i : i + batch_size])]

    def one(self, text: str) -> None:
        self._logits([text])

    def warm(self, texts: list[str], batch_size: int) -> None:
        self.sorted_pass(texts, batch_size)
        self.file_order_pass(texts, batch_size)


class _OtherWork:
    """CPU other processes (and the hypervisor) took while this contender ran a timed segment."""

    def __enter__(self) -> _OtherWork:
        from kolite_bench.env import machine_cpu_s

        self.machine, self.own, self.wall = machine_cpu_s(), time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        from kolite_bench.env import machine_cpu_s, other_work

        self.result = other_work(self.machine, machine_cpu_s(), time.process_time() - self.own,
                                 time.perf_counter() - self.wall)


def _timed(fn: Any, *args: Any) -> tuple[float, Any, dict[str, Any]]:
    before = _load1()
    with _OtherWork() as others:
        start = time.perf_counter()
        result = fn(*args)
        seconds = time.perf_counter() - start
    return seconds, result, {"before": before, "after": _load1(), "other_work": others.result}


def _bs1(contender: Any, texts: list[str]) -> dict[str, Any]:
    for text in texts[:20]:
        contender.one(text)
    samples = []
    before = _load1()
    with _OtherWork() as others:
        for text in texts:
            start = time.perf_counter()
            contender.one(text)
            samples.append((time.perf_counter() - start) * 1000)
    return {
        "p50_ms": float(np.percentile(samples, 50)),
        "p99_ms": float(np.percentile(samples, 99)),
        "load1": {"before": before, "after": _load1(), "other_work": others.result},
    }


def _texts(data_dir: Path, count: int, offset: int, data: str = "nsmc") -> list[str]:
    if data == "klue-ner":  # sentences rebuilt from the dev file's character rows, as every kolite tool reads them
        from kolite_export.catalogue import read_dataset

        return list(read_dataset("klue-ner", data_dir).texts[offset : offset + count])
    lines = (data_dir / "nsmc" / "ratings_test.txt").read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[1] for line in lines[offset : offset + count]]


def _agreement(first: list[np.ndarray], second: list[np.ndarray]) -> dict[str, Any]:
    """Row by row (NER: token by token) between two kolite artifacts' outputs for the same texts."""
    a = np.concatenate([np.atleast_2d(x) for x in first])
    b = np.concatenate([np.atleast_2d(x) for x in second])
    return {
        "texts": len(first),
        "rows": len(a),
        "bitwise_identical_rows": int((a == b).all(axis=1).sum()),
        "max_abs_diff": float(np.abs(a - b).max()),
        "label_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
    }


def _build(kind: str, source: str, args: argparse.Namespace) -> Any:
    if kind == "kolite":
        return _Kolite(source, args.variant, args.threads, args.guard)
    if kind == "optimum":
        return _Optimum(source, args.threads)
    return _OpenVINO(source, args.threads)


def _serve(conn: Any, kind: str, source: str, args: argparse.Namespace, texts: list[str]) -> None:
    """A contender's process: load, warm, then answer the parent's commands one at a time."""
    contender = _build(kind, source, args)
    contender.warm(texts, args.batch_size)
    described: dict[str, Any] = {"name": contender.name}
    if kind == "kolite":
        described.update(guarded=contender.guarded)
    if kind == "openvino":
        described.update(streams=contender.streams, inference_precision=contender.precision)
    conn.send(described)
    while (command := conn.recv()) != "stop":
        if command == "logits":
            ones = texts[: min(200, len(texts))]
            bs1 = [row for t in ones for row in contender.outputs([t], batch_size=1)]
            conn.send((contender.sorted_pass(texts, args.batch_size), bs1))
        elif command == "bs1":
            conn.send(_bs1(contender, texts[: args.bs1_texts]))
        else:
            fn = contender.sorted_pass if command == "sorted" else contender.file_order_pass
            seconds, _, load = _timed(fn, texts, args.batch_size)
            conn.send({"texts_per_s": len(texts) / seconds, "load1": load})


def run(args: argparse.Namespace) -> dict[str, Any]:
    import multiprocessing

    texts = _texts(Path(args.data_dir), args.texts, args.offset, args.data)
    context = multiprocessing.get_context("spawn")
    sources = [("kolite", a) for a in args.artifact] + ([("openvino", args.openvino)] if args.openvino else [])
    sources += [("optimum", args.optimum)] if args.optimum else []
    workers = []
    for kind, source in sources:  # loaded and warmed one after another, so warm-ups do not overlap either
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, kind, source, args, texts), daemon=True)
        process.start()
        workers.append((parent, process, parent.recv()))
    names = [info["name"] for _, _, info in workers]
    equivalence = None
    if len(args.artifact) == 2:
        outputs = []
        for conn, _, _ in workers[:2]:
            conn.send("logits")
            outputs.append(conn.recv())
        equivalence = {
            "batch": _agreement(outputs[0][0], outputs[1][0]),
            "bs1": _agreement(outputs[0][1], outputs[1][1]),
        }
    rounds = []
    for r in range(args.rounds):
        order = workers[r % len(workers) :] + workers[: r % len(workers)]
        row: dict[str, Any] = {"round": r, "order": [info["name"] for _, _, info in order], "load1_start": _load1()}
        for conn, _, info in order:
            entry: dict[str, Any] = {}
            for command in ("sorted", "file_order", "bs1"):
                conn.send(command)
                entry[command] = conn.recv()
            row[info["name"]] = entry
        row["busy"] = round_busy(row, names)
        rounds.append(row)
        print(
            f"round {r + 1} (load {row['load1_start']}): "
            + ", ".join(
                f"{n} {row[n]['sorted']['texts_per_s']:.0f}/{row[n]['file_order']['texts_per_s']:.0f} t/s, bs1 p50 "
                f"{row[n]['bs1']['p50_ms']:.2f} ms"
                for n in names
            ),
            flush=True,
        )
    for conn, process, _ in workers:
        conn.send("stop")
        process.join(timeout=30)
    ratios: dict[str, Any] = {}
    for a in names:
        for b in names:
            if a == b:
                continue
            per = {
                kind: [row[a][kind]["texts_per_s"] / row[b][kind]["texts_per_s"] for row in rounds]
                for kind in ("sorted", "file_order")
            }
            per["bs1_p50"] = [row[b]["bs1"]["p50_ms"] / row[a]["bs1"]["p50_ms"] for row in rounds]
            ratios[f"{a} / {b}"] = {
                k: {"rounds": [round(x, 3) for x in v], "median": float(np.median(v)), "min": min(v), "max": max(v)}
                for k, v in per.items()
            }
    return {
        "harness": "kolite_bench.crosscheck (plain loops, one process per contender, one at a time, rounds rotated)",
        "run_id": f"crosscheck-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": _cpu_model(), "logical_cores": os.cpu_count(), "python": platform.python_version()},
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "contenders": [info for _, _, info in workers],
        "equivalence": equivalence,
        "rounds": rounds,
        "ratios": ratios,
        "busy_rounds": [row["round"] for row in rounds if row["busy"]],
    }


def round_busy(row: dict[str, Any], names: list[str]) -> bool:
    """Whether other work or hypervisor steal passed ``OTHER_WORK_LIMIT`` cores in some timed segment of the round
    (results from before that was measured: a 1-min load above the cores at the round's start)."""
    from kolite_bench.env import shared_machine

    measured = [row[n][kind]["load1"].get("other_work") for n in names for kind in ("sorted", "file_order", "bs1")]
    if all(m is not None for m in measured):
        return any(shared_machine(m) for m in measured)
    return row["load1_start"] > (os.cpu_count() or 1)


def table(results: dict[str, Any]) -> str:
    """kolite ÷ each peer (OpenVINO THROUGHPUT, optimum) per pass, median with each round, and the run line (the docs
    render it from the file)."""
    peers = {"openvino": "OpenVINO THROUGHPUT", "optimum": "optimum int8"}
    lines = ["| second harness: kolite ÷ peer | sorted bs32 texts/s, per round | file order bs32 texts/s, per round | "
             "bs1 p50 (the peer's p50 ÷ kolite's), per round |", "|---|---|---|---|"]
    for pair, ratio in results["ratios"].items():
        kolite_name, other = pair.split(" / ")
        peer = next((label for prefix, label in peers.items() if other.startswith(prefix)), None)
        if not kolite_name.startswith("kolite:") or peer is None:
            continue
        cells = [f"**{ratio[k]['median']:.2f}×** ({' / '.join(f'{r:.2f}' for r in ratio[k]['rounds'])})"
                 for k in ("sorted", "file_order", "bs1_p50")]
        lines.append(f"| {kolite_name.removeprefix('kolite:')} ÷ {peer} | " + " | ".join(cells) + " |")
    settings, rounds = results["settings"], results["rounds"]
    loads = [r["load1_start"] for r in rounds]
    busy = results.get("busy_rounds") or []
    others = [entry[kind]["load1"]["other_work"] for r in rounds for entry in r.values() if isinstance(entry, dict)
              for kind in ("sorted", "file_order", "bs1") if (entry[kind]["load1"] or {}).get("other_work")]
    measured = (f", other work {min(o['cores'] for o in others):.2f}–{max(o['cores'] for o in others):.2f} cores and "
                f"steal {min(o['steal_cores'] for o in others):.2f}–{max(o['steal_cores'] for o in others):.2f} cores "
                "while timed") if others else ""
    lines.append(
        f"\nrun {results['run_id']}: {settings['texts']:,} texts of {settings.get('data', 'nsmc')} from "
        f"#{settings['offset']:,}, batch {settings['batch_size']}, bs1 over {settings['bs1_texts']}, "
        f"{len(rounds)} rotated rounds, {results['machine']['cpu']} ({results['machine']['logical_cores']} vCPUs, "
        f"{settings['threads']} threads each), load average {min(loads)}–{max(loads)} at round starts" + measured
        + (f", busy rounds {busy}" if busy else ""))
    return "\n".join(lines)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kolite_bench.crosscheck", description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", action="append", required=True, help="kolite artifact folder (1 or 2)")
    parser.add_argument("--variant", default="int8-static")
    parser.add_argument("--openvino", help="folder of the bench's cached OpenVINO IR (model.int8.xml, info.json)")
    parser.add_argument("--optimum", help="folder of the bench's cached optimum int8 export (.../int8)")
    parser.add_argument("--data-dir", default=os.path.join(os.environ.get("KOLITE_SHARED", "../shared"), "data"))
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--data", choices=("nsmc", "klue-ner"), default="nsmc",
                        help="NSMC test reviews (classification) or KLUE-NER dev sentences (token classification)")
    parser.add_argument("--offset", type=int, default=0, help="first text of the set to use")
    parser.add_argument("--guard", choices=tuple(GUARD), default="off",
                        help="kolite's fidelity guard: off (the int8 graph alone, default), on, or auto (the default "
                             "kolite.load gives: on where export measured a small re-run share)")
    parser.add_argument("--bs1-texts", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True, help="results JSON to write")
    args = parser.parse_args(argv)
    result = run(args)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    for pair, ratio in result["ratios"].items():
        print(pair, {k: f"{v['median']:.2f}× ({v['min']:.2f}–{v['max']:.2f})" for k, v in ratio.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
