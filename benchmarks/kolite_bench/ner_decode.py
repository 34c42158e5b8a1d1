"""NER decoding cost, interleaved A/B on the same model outputs: the array paths ``tag`` runs
(``kolite.aggregation.token_entities`` for none/simple, ``word_entities`` for first/average/max: numpy passes per
window) against the per-token objects path they replaced (``gather_pre_tokens`` + ``aggregate``, kept as the
reference the tests hold the array paths to, bit for bit).

    python -m kolite_bench.ner_decode [--texts 1024] [--rounds 5] [--json benchmarks/results/ner-decode-004.json]

The objects path here stops at its raw entities; the array path's time includes mapping offsets back to the
original text and building the public ``Entity`` objects, so the ratio is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ARTIFACT = "artifacts/004-koelectra-small-v3-modu-ner"


def main(argv: Sequence[str] | None = None) -> int:
    import kolite
    from kolite.aggregation import aggregate, gather_pre_tokens
    from kolite.classification import softmax
    from kolite_export.catalogue import read_dataset

    parser = argparse.ArgumentParser(prog="python -m kolite_bench.ner_decode", description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", default=ARTIFACT)
    parser.add_argument("--texts", type=int, default=1024, help="KLUE-NER dev sentences (file order)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--aggregations", nargs="+", default=["simple", "first", "average"])
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    texts = list(read_dataset("klue-ner").texts[: args.texts])
    model = kolite.load(args.artifact, variant="int8-static", device="cpu", threads=1)
    encoded = model.encode(texts)
    outputs = model.run(encoded, 32)
    encoder = model.encoder

    def objects_path(strategy: str) -> None:
        for text, windows, logits in zip(encoded.texts, encoded.windows, encoded.per_text(outputs), strict=True):
            for window, window_logits in zip(windows, logits, strict=True):
                pre_tokens = gather_pre_tokens(text, window.tokens, window.ids, window.offsets,
                                               window.special_tokens_mask, softmax(window_logits.astype(np.float32)),
                                               encoder.subword_prefix, encoder.unk_token_id)
                [e for e in aggregate(pre_tokens, strategy, model.labels) if e.label != "O"]

    result: dict[str, object] = {"texts": len(texts), "rounds": args.rounds, "load_average": os.getloadavg()}
    for strategy in args.aggregations:
        options = model.options(aggregation=strategy)
        times: dict[str, list[float]] = {"objects": [], "array": []}
        for _ in range(args.rounds):
            for name, run in (("objects", lambda: objects_path(strategy)),  # noqa: B023 - called in this loop
                              ("array", lambda: model.decode(outputs, encoded, options))):  # noqa: B023
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        medians = {name: float(np.median(values)) for name, values in times.items()}
        result[strategy] = {"seconds": times, "median_seconds": medians,
                            "speedup": medians["objects"] / medians["array"]}
        print(f"{len(texts)} sentences, aggregation={strategy}: objects path {medians['objects'] * 1e3:.0f} ms,"
              f" array path {medians['array'] * 1e3:.0f} ms ({medians['objects'] / medians['array']:.1f}x)")
    print(f"load average {result['load_average']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
