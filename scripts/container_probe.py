"""Ask a kolite server the same questions every time, and compare two servers' answers (scripts/container_check.sh).

    container_probe.py probe URL OUT_DIR --classifier NAME --tagger NAME [--texts N]
        writes one file per request: the status line and the exact response body bytes, for `cmp`.
    container_probe.py agree DIR_A DIR_B [--min-agreement 0.99]
        label agreement and max |Δlogit| of the raw-score answers (another CPU: equal only at the fidelity bars).

Standard library only: the host running the check needs no kolite installed to probe.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

# Messy on purpose: decomposed Hangul (NFD), emoji, Latin mixed in, a lone space, an over-long line, an entity-rich
# news sentence. The answers must be the same bytes inside and outside the container.
FIXED_TEXTS = [
    "이 영화 정말 재미있어요. 배우들 연기가 최고!",
    "시간 낭비였다. 다시는 안 본다.",
    "\u1100\u1161\u11a8\u1100\u1161\u11a8 별로였음ㅋㅋ 😡",
    "GDNTOPCLASSINTHECLUB",
    " ",
    "삼성전자는 3일 수원 본사에서 신제품 발표회를 열었다. " * 30,
    "이순신 장군은 1545년 한양에서 태어났다.",
    "경찰은 박씨의 딸과 김모씨 등 16명을 같은 혐의로 불구속 입건했다.",
]


def _texts(count: int) -> list[str]:
    """The fixed texts, then NSMC test sentences from $KOLITE_SHARED when it is there (more texts, same order)."""
    texts = list(FIXED_TEXTS)
    shared = os.environ.get("KOLITE_SHARED")
    path = Path(shared, "data", "nsmc", "ratings_test.txt") if shared else None
    if path is not None and path.is_file() and count > len(texts):
        with path.open(encoding="utf-8") as handle:
            next(handle)
            for line in handle:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 3 and parts[1].strip():
                    texts.append(parts[1])
                if len(texts) >= count:
                    break
    return texts


_MAX_ITEMS = 32  # kolite serve's default --max-items


def _call(url: str, body: dict[str, Any] | None, request_id: str) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    # A fixed request id: error bodies carry it, and they must be byte-equal too.
    headers = {"Content-Type": "application/json", "X-Request-ID": request_id}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def probe(url: str, out: Path, classifier: str, tagger: str, count: int) -> int:
    texts = _texts(count)
    chunks = [texts[start : start + _MAX_ITEMS] for start in range(0, len(texts), _MAX_ITEMS)]
    requests = {
        "health": ("/health", None),
        "predict-one": (f"/models/{classifier}/predict", {"inputs": texts[0]}),
        "predict-many": (f"/models/{classifier}/predict", {"inputs": chunks[0], "top_k": 1}),
        **{f"predict-raw-{n:03d}": (f"/models/{classifier}/predict", {"inputs": chunk, "raw_scores": True})
           for n, chunk in enumerate(chunks)},
        "tag-many": (f"/models/{tagger}/tag", {"inputs": texts[:8]}),
        "predict-bad": (f"/models/{classifier}/predict", {"inputs": 42}),
    }
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name, (path, body) in requests.items():
        status, payload = _call(url.rstrip("/") + path, body, f"container-check-{name}")
        (out / f"{name}.status").write_text(f"{status}\n")
        (out / f"{name}.body").write_bytes(payload)
        expected = 422 if name.endswith("-bad") else 200
        if status != expected:
            print(f"probe {url}{path}: HTTP {status} (expected {expected}): {payload[:300]!r}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


def agree(first: Path, second: Path, min_agreement: float) -> int:
    """Classifier: argmax agreement and max |Δlogit| over raw scores; tagger: identical entity spans and labels."""
    a = [answer for path in sorted(first.glob("predict-raw-*.body")) for answer in json.loads(path.read_bytes())]
    b = [answer for path in sorted(second.glob("predict-raw-*.body")) for answer in json.loads(path.read_bytes())]
    if not a or len(a) != len(b):
        print(f"agree: {len(a)} vs {len(b)} answers", file=sys.stderr)
        return 1
    same, max_delta = 0, 0.0
    for left, right in zip(a, b, strict=True):
        scores_a = {item["label"]: item["score"] for item in left}
        scores_b = {item["label"]: item["score"] for item in right}
        same += max(scores_a, key=scores_a.get) == max(scores_b, key=scores_b.get)
        max_delta = max(max_delta, *(abs(scores_a[k] - scores_b[k]) for k in scores_a))
    tags_a = json.loads((first / "tag-many.body").read_bytes())
    tags_b = json.loads((second / "tag-many.body").read_bytes())

    def spans(entities: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(e["label"], e["start"], e["end"]) for e in entities]

    same_tags = sum(spans(x) == spans(y) for x, y in zip(tags_a, tags_b, strict=True))
    agreement = same / len(a)
    report = {"texts": len(a), "label_agreement": agreement, "max_abs_logit_diff": max_delta,
              "tagged_texts": len(tags_a), "tagged_texts_identical": same_tags}
    print(json.dumps(report))
    ok = agreement >= min_agreement and same_tags >= len(tags_a) - 1
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("probe")
    p.add_argument("url")
    p.add_argument("out", type=Path)
    p.add_argument("--classifier", required=True)
    p.add_argument("--tagger", required=True)
    p.add_argument("--texts", type=int, default=64)
    a = commands.add_parser("agree")
    a.add_argument("first", type=Path)
    a.add_argument("second", type=Path)
    a.add_argument("--min-agreement", type=float, default=0.99)
    args = parser.parse_args(argv)
    if args.command == "probe":
        return probe(args.url, args.out, args.classifier, args.tagger, args.texts)
    return agree(args.first, args.second, args.min_agreement)


if __name__ == "__main__":
    raise SystemExit(main())
