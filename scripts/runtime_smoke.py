"""Run every artifact through the torch-free runtime: a few Korean sentences each, and bs1 latency.

Started by the demo in a subprocess where torch, transformers and optimum cannot be imported
(``python scripts/block_heavy_imports.py scripts/runtime_smoke.py ...``), so a success proves the runtime path is
torch-free. Prints human-readable predictions on stderr and one JSON document on stdout.

usage: runtime_smoke.py ARTIFACT_DIR [ARTIFACT_DIR ...] [--latency-texts N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import kolite

SENTENCES = [
    "이 영화 정말 재미있어요. 배우들 연기가 최고!",
    "시간 낭비였다. 다시는 안 본다.",
    "내일 서울은 오후부터 비가 올 것으로 예상됩니다.",
    "이순신 장군은 1545년 한양에서 태어났다.",
    "삼성전자는 3일 수원 본사에서 신제품 발표회를 열었다.",
    "왜 이렇게 화가 나는지 모르겠어, 너무 속상해.",
]


def _latency_ms(model, texts: list[str]) -> dict[str, float]:
    for text in texts[:5]:  # warm-up: first runs allocate the arena
        model.predict([text])
    samples = []
    for text in texts:
        start = time.perf_counter()
        model.predict([text])
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"p50_ms": statistics.median(samples), "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))]}


def _show(name: str, text: str, result: list) -> None:
    shown = ", ".join(
        f"{r.label}({r.score:.2f})" + (f"[{r.text}]" if hasattr(r, "text") else "") for r in result[:3]
    )
    print(f"  {name:<34} {text[:28]:<28}  → {shown or '(no entities)'}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("artifacts", nargs="+")
    parser.add_argument("--latency-texts", type=int, default=50)
    args = parser.parse_args()
    heavy = [m for m in ("torch", "transformers", "optimum") if m in sys.modules]
    if heavy:
        raise SystemExit(f"runtime imported {heavy}: it must stay torch-free")
    report = []
    latency_texts = (SENTENCES * (args.latency_texts // len(SENTENCES) + 1))[: args.latency_texts]
    for path in args.artifacts:
        model = kolite.load(path, variant="auto", device="cpu")
        results = model.predict(SENTENCES)
        for text, result in zip(SENTENCES, results, strict=True):
            _show(model.manifest.name, text, result)
        report.append({"artifact": path, "name": model.manifest.name, "variant": model.variant.name,
                       **_latency_ms(model, latency_texts)})
        model.close()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
