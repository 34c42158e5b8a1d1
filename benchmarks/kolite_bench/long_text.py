"""What long-text windows change for classification: texts longer than a window, classified by truncation and by
overlapping windows (mean and max pooling), compared with the model reading the whole text at once.

    python -m kolite_bench.long_text ARTIFACT [--window 128] [--out benchmarks/results]

The whole-text reading (the manifest's max_length, which every text here fits) stands in for the answer a model
would give if it could see everything; a model fine-tuned with a shorter window (128 tokens is the usual Korean
fine-tuning recipe) sees only the window. Agreement with the whole-text label is reported for each strategy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["compare_strategies", "main"]

STRATEGIES = {
    "truncate": {"long_text": "truncate"},
    "windows-mean": {"long_text": "windows", "pooling": "mean"},
    "windows-max": {"long_text": "windows", "pooling": "max"},
}


def compare_strategies(artifact: str | Path, texts: list[str], window: int, variant: str = "fp32") -> dict[str, Any]:
    """Per strategy: label agreement and mean |Δprobability| against the whole-text reading, over the texts
    longer than ``window`` tokens."""
    import kolite

    with kolite.load(artifact, variant=variant) as whole:
        lengths = whole.encode(texts).lengths
        long_texts = [text for text, n in zip(texts, lengths, strict=True) if n > window]
        if not long_texts:
            return {"window": window, "texts": len(texts), "longer_than_window": 0, "strategies": {}}
        reference = whole.scores(long_texts)
    results: dict[str, Any] = {}
    with kolite.load(artifact, variant=variant, max_length=window) as short:
        for name, options in STRATEGIES.items():
            scores = short.scores(long_texts, **options)
            results[name] = {
                "label_agreement": float((scores.argmax(-1) == reference.argmax(-1)).mean()),
                "mean_abs_prob_diff": float(np.abs(scores - reference).mean()),
            }
    return {
        "window": window,
        "texts": len(texts),
        "longer_than_window": len(long_texts),
        "tokens_p50_p90_max": [int(v) for v in np.percentile(lengths, [50, 90, 100])],
        "strategies": results,
    }


def render(result: dict[str, Any], source: str) -> str:
    lines = [
        f"### Long-text windows ({source}, window {result['window']} tokens)",
        "",
        f"{result['longer_than_window']} of {result['texts']:,} texts are longer than the window (tokens p50/p90/max:"
        f" {'/'.join(map(str, result.get('tokens_p50_p90_max', [])))}); every one fits the whole-text reading.",
        "",
        "| strategy | label agreement with the whole text | mean \\|Δprobability\\| |",
        "|---|---:|---:|",
    ]
    for name, numbers in result["strategies"].items():
        lines.append(f"| {name} | {numbers['label_agreement']:.1%} | {numbers['mean_abs_prob_diff']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from kolite_export.catalogue import read_dataset

    parser = argparse.ArgumentParser(prog="python -m kolite_bench.long_text", description=__doc__)
    parser.add_argument("artifact")
    parser.add_argument("--data", default="kote", help="data set of the catalogue (default kote: test + val)")
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    texts = list(read_dataset(args.data).texts)
    result = compare_strategies(args.artifact, texts, args.window)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "long-text.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    markdown = render(result, f"{args.data}, {Path(args.artifact).name}")
    (out / "long-text.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
