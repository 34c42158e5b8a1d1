"""Rewrite ``Gelu → QuantizeLinear`` chains into one ``kolite.native`` node, in a second graph file.

    python -m kolite_bench.native_fusion.rewrite ARTIFACT OUT_DIR [--variant int8-static]

writes OUT_DIR as a copy of the artifact whose variant graph is the fused one (manifest sha256/size updated, the
unfused graph is still the original artifact's: the fallback). Such a graph only opens in a session whose options
registered the library (``native_session_options``).

A chain is fused only when the result cannot differ: Gelu in its exact (erf) form, its output read by nothing but
one QuantizeLinear, and that QuantizeLinear per-tensor with a constant float scale and a constant uint8/int8 zero
point (what kolite's int8-static recipe writes after each feed-forward MatMulIntegerToFloat).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["DOMAIN", "fuse_gelu_quantize", "main", "native_session_options", "write_fused_artifact"]

DOMAIN = "kolite.native"
_OPS = {2: "GeluQuantizeLinear", 3: "GeluQuantizeLinearS8"}  # TensorProto UINT8 / INT8 zero point → op name
_GELU_DOMAINS = ("", "ai.onnx", "com.microsoft")


def fuse_gelu_quantize(model: Any) -> tuple[Any, int]:
    """A copy of ``model`` (onnx.ModelProto) with every eligible chain fused, and how many were."""
    from onnx import helper, numpy_helper

    model = copy.deepcopy(model)
    graph = model.graph
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    initializers = {t.name: t for t in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    fused: dict[int, Any] = {}  # id(gelu) → fused node, placed where the Gelu was
    dropped: set[int] = set()
    for node in graph.node:
        if node.op_type != "Gelu" or node.domain not in _GELU_DOMAINS or not _exact_gelu(node, helper):
            continue
        users = consumers[node.output[0]]
        if node.output[0] in graph_outputs or len(users) != 1:
            continue
        quant = users[0]
        if quant.op_type != "QuantizeLinear" or quant.domain not in _GELU_DOMAINS or len(quant.input) != 3:
            continue
        if quant.input[0] != node.output[0] or any(a.name not in ("axis", "saturate") for a in quant.attribute):
            continue
        scale, zero_point = initializers.get(quant.input[1]), initializers.get(quant.input[2])
        if scale is None or zero_point is None or scale.data_type != 1 or zero_point.data_type not in _OPS:
            continue
        if numpy_helper.to_array(scale).size != 1 or numpy_helper.to_array(zero_point).size != 1:
            continue  # per-channel: the kernel reads one scale and one zero point
        fused[id(node)] = helper.make_node(
            _OPS[zero_point.data_type], [node.input[0], quant.input[1], quant.input[2]], [quant.output[0]],
            name=f"{node.name or quant.name}/GeluQuantizeLinear", domain=DOMAIN)
        dropped.update((id(node), id(quant)))
    if not fused:
        return model, 0
    nodes = [fused.get(id(n), n) for n in graph.node if id(n) in fused or id(n) not in dropped]
    removed = {n.output[0] for n in graph.node if id(n) in fused}
    kept_info = [v for v in graph.value_info if v.name not in removed]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    if all(o.domain != DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    return model, len(fused)


def _exact_gelu(node: Any, helper: Any) -> bool:
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if attribute.name != "approximate" or value not in (b"none", "none"):
            return False  # tanh approximation (or anything unknown): not what the kernel computes
    return True


def native_session_options(library: str | Path, threads: int = 1) -> Any:
    """kolite's own CPU session options (``kolite.session.build_session_options``) with the library registered.
    onnxruntime raises here when the library refuses (no AVX2/FMA): the caller then opens the unfused graph."""
    from kolite.session import build_session_options

    options = build_session_options(threads)
    options.register_custom_ops_library(str(library))
    return options


def write_fused_artifact(artifact: str | Path, out_dir: str | Path, variant: str = "int8-static") -> int:
    """Copy ``artifact`` to ``out_dir`` with ``variant``'s graph fused; returns the number of fused chains."""
    import onnx

    source, out = Path(artifact), Path(out_dir)
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["variants"][variant]
    model, count = fuse_gelu_quantize(onnx.load(str(source / entry["file"])))
    out.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():  # the other files as they are (tokenizer, other variants: hard links when possible)
        if item.is_file() and item.name not in ("manifest.json", entry["file"]):
            _link_or_copy(item, out / item.name)
    data = model.SerializeToString()
    (out / entry["file"]).write_bytes(data)
    entry["sha256"], entry["size_bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    entry["native_fusion"] = {"domain": DOMAIN, "fused_chains": count, "unfused_artifact": str(source)}
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return count


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        dst.hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kolite_bench.native_fusion.rewrite", description=__doc__)
    parser.add_argument("artifact")
    parser.add_argument("out_dir")
    parser.add_argument("--variant", default="int8-static")
    args = parser.parse_args(argv)
    print(f"fused {write_fused_artifact(args.artifact, args.out_dir, args.variant)} Gelu → QuantizeLinear chains")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
