"""Make the CUDA check's payload here (needs torch): artifacts, texts, PyTorch reference logits, peer weights.

The lent GPU machine reaches no registry and takes at most 64 MiB per call, so everything it needs is made here
and carried in parts (``scripts/gpu_check.sh pack``):

    <payload>/<seed>/artifact/   manifest + tokenizer + the variants the check runs (fp16 is rebuilt there from
                                 fp32-opt when ``--rebuild-fp16``: the same converter, checked against the sha256)
    <payload>/<seed>/texts.json  texts the export gate never reads (after its first 2,000 / 1,000)
    <payload>/<seed>/reference.npz  PyTorch fp32 logits on CPU for those texts, on kolite's own token ids
    <payload>/<seed>/torch/      the checkpoint in fp16 for the torch CUDA peer (fp16 is what the peer runs)
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["SEEDS", "main", "make_seed_payload"]

# seed → (data set, first text index: past what the export gate reads)
SEEDS = {"000": ("nsmc", 2000), "001": ("nsmc", 2000), "004": ("klue-ner", 1000)}
CARRIED_VARIANTS = ("fp16", "fp32-opt", "int8-static")


def _copy_artifact(artifact: Path, out: Path, variants: Sequence[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(artifact / "manifest.json", out / "manifest.json")
    shutil.copy2(artifact / "tokenizer.json", out / "tokenizer.json")
    for variant in variants:
        source = artifact / f"model.{variant}.onnx"
        if source.is_file():
            shutil.copy2(source, out / source.name)


def make_seed_payload(seed: str, artifact: Path, checkpoint: Path, data_dir: Path, out: Path, count: int,
                      variants: Sequence[str] = CARRIED_VARIANTS) -> dict[str, int]:
    import kolite
    import torch

    from kolite_bench.datasets import load_dataset
    from kolite_bench.gpu_torch_peer import load_peer, make_runner

    name, first = SEEDS[seed]
    texts = load_dataset(name, data_dir, limit=first + count).texts[first:]
    encoder = kolite.load(artifact, variant="int8-static", device="cpu", parallel=0)
    sequences = encoder.encode(texts).sequences
    texts = [t for t in texts if len(encoder.encode([t]).sequences) == 1] if len(sequences) != len(texts) else texts
    model, per_token = load_peer(checkpoint, "cpu", torch.float32)
    reference = make_runner(model, encoder, "cpu", per_token)(texts, 64)
    encoder.close()
    seed_dir = out / seed
    _copy_artifact(artifact, seed_dir / "artifact", variants)
    (seed_dir / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    lengths = np.array([len(r) if per_token else 1 for r in reference])
    flat = np.concatenate(reference) if per_token else np.stack(reference)
    np.savez(seed_dir / "reference.npz", logits=flat.astype(np.float32), lengths=lengths, per_token=per_token)
    peer = seed_dir / "torch"
    model.half().save_pretrained(peer, safe_serialization=True)
    return {"texts": len(texts), "tokens": int(lengths.sum()) if per_token else len(texts)}


def main(argv: Sequence[str] | None = None) -> int:
    from kolite_export.paths import shared_dir

    parser = argparse.ArgumentParser(prog="python -m kolite_bench.gpu_payload", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", action="append", nargs=3, metavar=("SEED", "ARTIFACT", "CHECKPOINT"), required=True)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--variants", default=",".join(CARRIED_VARIANTS))
    args = parser.parse_args(argv)
    for seed, artifact, checkpoint in args.seed:
        made = make_seed_payload(seed, Path(artifact), Path(checkpoint), shared_dir() / "data", args.out, args.texts,
                                 tuple(args.variants.split(",")))
        print(f"{seed}: {made}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
