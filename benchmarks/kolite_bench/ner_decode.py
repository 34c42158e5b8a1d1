"""NER decoding cost, interleaved A/B on the same model outputs: the array path ``tag`` runs for ``none``/``simple``
(``kolite.aggregation.token_entities``, one numpy pass per window) against the per-token objects path it replaced
(``gather_pre_tokens`` + ``aggregate``, still the route of the word strategies and the reference the tests hold the
array path to, bit for bit).

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
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    texts = list(read_dataset("klue-ner").texts[: args.texts])
    model = kolite.load(args.artifact, variant="int8-static", device="cpu", threads=1)
    options = model.options(aggregation="simple")
    encoded = model.encode(texts, options)
    outputs = model.run(encoded, 32)
    encoder = model.encoder

    def objects_path() -> None:
        for text, windows, logits in zip(encoded.texts, encoded.windows, encoded.per_text(outputs), strict=True):
            for window, window_logits in zip(windows, logits, strict=True):
                pre_tokens = gather_pre_tokens(text, window.tokens, window.ids, window.offsets,
                                               window.special_tokens_mask, softmax(window_logits.astype(np.float32)),
                                               encoder.subword_prefix, encoder.unk_token_id)
                [e for e in aggregate(pre_tokens, "simple", model.labels) if e.label != "O"]

    times: dict[str, list[float]] = {"objects": [], "array": []}
    for _ in range(args.rounds):
        for name, run in (("objects", objects_path), ("array", lambda: model.decode(outputs, encoded, options))):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    medians = {name: float(np.median(values)) for name, values in times.items()}
    result = {"texts": len(texts), "rounds": args.rounds, "seconds": times, "median_seconds": medians,
              "speedup": medians["objects"] / medians["array"], "load_average": os.getloadavg()}
    print(f"{len(texts)} sentences, aggregation=simple: objects path {medians['objects'] * 1e3:.0f} ms, array path"
          f" {medians['array'] * 1e3:.0f} ms ({result['speedup']:.1f}x); load average {result['load_average']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
