"""Bodies of ``kolite predict`` and ``kolite info``."""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from kolite.cli_io import Item, JsonlWriter, decode_input, open_input, read_items
from kolite.errors import KoliteError

__all__ = ["predict_items", "run_info", "run_predict"]


def _top_k(value: str | None) -> int | None:
    if value is None or value.lower() in ("all", "none"):
        return None
    if not value.isdigit() or int(value) < 1:
        raise KoliteError(f"--top-k must be a positive integer or 'all', got {value!r}")
    return int(value)


def predict_items(model: Any, items: Iterable[Item], options: dict[str, Any], chunk_size: int) -> Iterator[dict]:
    """Records for each item, in input order; errors stay per item."""
    key = model.result_key
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        valid = [item for item in chunk if item.error is None]
        outputs = iter(model.predict([item.text for item in valid], **options) if valid else [])
        for item in chunk:
            if item.error is not None:
                yield {**item.header(), "error": item.error}
            else:
                record = {**item.header(), "text": item.text, key: [r.to_dict() for r in next(outputs)]}
                yield record


def run_predict(args: argparse.Namespace) -> int:
    import kolite

    if not args.texts and not args.input:
        raise KoliteError("give texts as arguments or --input FILE (- for stdin)")
    if args.chunk_size < 1 or args.batch_size < 1:
        raise KoliteError("--chunk-size and --batch-size must be positive")
    # Only the options given: one that does not apply to the model's task is refused by model.options.
    given = {
        "function_to_apply": args.function_to_apply,
        "long_text": args.long_text,
        "pooling": args.pooling,
        "aggregation": args.aggregation,
        "stride": args.stride,
    }
    options: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    if args.top_k is not None:
        options["top_k"] = _top_k(args.top_k)
    model = kolite.load(args.artifact, variant=args.variant, device=args.device, threads=args.threads,
                        guard=args.guard)
    # Validate task options once, up front, instead of failing every chunk.
    model.options(**options)
    options["batch_size"] = args.batch_size
    items: Iterable[Item] = [Item(n, text=t) for n, t in enumerate(args.texts, start=1)]
    stream = open_input(args.input) if args.input else None
    if stream is not None:
        choice, decoded = decode_input(stream, args.encoding)
        if choice.how not in ("ASCII", "valid UTF-8", "given"):  # a BOM or a guess: say what was chosen
            print(f"kolite predict: reading {args.input} as {choice.describe()}", file=sys.stderr)
        items = itertools.chain(items, read_items(decoded, args.format, choice))
    out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    writer = JsonlWriter(out)
    succeeded = failed = 0
    try:
        for record in predict_items(model, items, options, args.chunk_size):
            writer.write(record)
            failed += "error" in record
            succeeded += "error" not in record
        writer.flush()
    finally:
        if stream is not None and stream is not sys.stdin.buffer:
            stream.close()
        if args.output:
            out.close()
        model.close()
    if failed:
        print(f"kolite predict: {failed} of {failed + succeeded} items failed (see 'error' fields)", file=sys.stderr)
    if failed and (args.strict or not succeeded):
        return 1
    return 0


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 2**20:.1f} MiB"


def _variant_facts(variant: Any) -> str:
    """Gate numbers (agreement with its lower 95 % bound first), then how the graph differs from a plain one."""
    numbers = dict(variant.validation)
    facts = []
    for key in ("label_agreement", "token_label_agreement"):
        if key in numbers:
            low = numbers.pop(f"{key}_low95", None)
            bound = f" (lower 95% bound {low:.2%})" if isinstance(low, float) else ""
            facts.append(f"{key}={numbers.pop(key):.2%}{bound}")
    facts += [f"{k}={_short(v)}" for k, v in numbers.items()]
    repair = variant.recipe.get("repair")
    if repair:
        facts.append(
            f"float_nodes={len(repair['float_nodes'])} ({repair['float_weight_fraction']:.1%} of quantized weights)"
        )
    if variant.cpu_features:
        facts.append(f"cpu_features={'+'.join(variant.cpu_features)}")
    if variant.rank is not None:
        facts.append(f"rank={variant.rank}")
    return ", ".join(facts) or "-"


def _guard_lines(manifest: Any) -> list[str]:
    """The fidelity guard of each int8 variant: τ, what it re-runs, and whether it is on by default."""
    from kolite.guard import DEFAULT_MAX_RERUN_FRACTION, GuardRecord

    lines = []
    for name, variant in manifest.variants.items():
        if variant.precision != "int8":
            continue
        record = GuardRecord.from_manifest(variant.guard)
        if record is None:
            lines.append(f"guard {name}: none recorded (exported before the guard; --guard needs a re-export)")
            continue
        fraction = record.rerun_fraction
        default = "on" if fraction is not None and fraction <= DEFAULT_MAX_RERUN_FRACTION else "off"
        measured = "not measured" if fraction is None else f"{fraction:.2%}"
        rows, flips = variant.guard.get("rows"), variant.guard.get("unguarded_flips")
        lines.append(
            f"guard {name}: tau={record.tau:.4g} (pooled words {record.pooled_tau:.4g}), re-runs {measured} of "
            f"{rows} held-out texts in "
            f"{record.float_variant} ({flips} unguarded flips there); default {default}"
        )
    return lines


def run_info(args: argparse.Namespace) -> int:
    from kolite.api import auto_candidates
    from kolite.cpu_budget import cpu_budget
    from kolite.manifest import load_manifest
    from kolite.providers import DEVICE_REGISTRY
    from kolite.sources import resolve_source

    source = resolve_source(args.artifact)
    manifest = load_manifest(source.directory)
    budget = cpu_budget()
    if args.json:
        sys.stdout.write(manifest.to_json())
        return 0
    lines = [
        f"name:         {manifest.name}",
        f"task:         {manifest.task} ({manifest.problem_type})",
        f"labels ({len(manifest.labels)}): {', '.join(manifest.labels)}",
        f"inputs:       {', '.join(manifest.inputs)}  max_length={manifest.max_length} "
        f"pad_token_id={manifest.pad_token_id} truncation={manifest.truncation_side}",
        f"folder:       {source.directory}",
        f"threads:      {budget.threads} ({budget.reason}; --threads overrides)",
        "variants:",
    ]
    for name, variant in manifest.variants.items():
        size = _size(variant.size_bytes)
        lines.append(f"  {name:<12} {variant.precision:<5} {size:>10}  {variant.status:<6}  {_variant_facts(variant)}")
    lines += _guard_lines(manifest)
    for kind, (_, device) in DEVICE_REGISTRY.items():
        candidates = auto_candidates(manifest, device(0))
        chosen = candidates[0].name if candidates else "none (name a variant)"
        lines.append(f"auto on {kind}: {chosen}")
    for title, mapping in (("source", manifest.source), ("tools", manifest.tools)):
        if mapping:
            lines.append(f"{title}: " + ", ".join(f"{k}={v}" for k, v in mapping.items()))
    if manifest.created_at:
        lines.append(f"created_at: {manifest.created_at}")
    print("\n".join(lines))
    return _verify(source, manifest) if args.verify else 0


# A probe repeated past any max_length: the whole position table and a full window run once.
_PROBE = "이 영화 정말 재미있어요. 배우 김민수 씨는 서울에서 태어났습니다. "


def _verify(source: Any, manifest: Any) -> int:
    """``info --verify``: every file's sha256, then every passed variant loads and runs a probe text. Every
    failure is reported (not only the first); 1 if any."""
    import kolite
    from kolite.integrity import safe_member, verify_file

    failures = []
    refs = [(manifest.tokenizer.file, manifest.tokenizer.sha256, manifest.tokenizer.size_bytes)]
    refs += [(v.file, v.sha256, v.size_bytes) for v in manifest.variants.values()]
    for file, sha256, size in refs:
        try:
            source.ensure(file)
            verify_file(safe_member(source.directory, file), sha256, size)
            print(f"sha256 ok: {file}")
        except KoliteError as exc:
            failures.append(f"{file}: {exc}")
    probe = _PROBE * (manifest.max_length // 2 + 1)  # every repetition is several tokens
    for name in manifest.passed_variants:
        try:
            with kolite.load(source.directory, variant=name, threads=1, parallel=0) as model:
                model.predict(probe)
            print(f"loads and runs: {name}")
        except Exception as exc:  # onnxruntime raises untyped errors, at load or at run
            failures.append(f"variant {name}: {type(exc).__name__}: {exc}")
    for failure in failures:
        print(f"kolite info: FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0
