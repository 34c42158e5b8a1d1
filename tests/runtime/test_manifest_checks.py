"""Issue 21.2: manifests are trusted no further than they are checked. The parse is strict (a key given twice is
refused, naming it), every number is range-checked (absurd values are a ManifestError, never an OverflowError or a
crash inside onnxruntime), ``max_length`` fits the graph's position table (recorded by export, read from the graph
for older manifests), and ``kolite info --verify`` means "every passed variant loads and runs a probe text"."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import kolite
import numpy as np
import pytest
from kolite.cli import main as kolite_main
from kolite.errors import IntegrityError, ManifestError
from kolite.graph_facts import read_graph_facts
from kolite.manifest import load_manifest

pytestmark = pytest.mark.torch  # builds broken graphs with onnx (the export environment)


@pytest.fixture(scope="module")
def artifact(tiny_artifact) -> Path:
    return tiny_artifact("000")


def _copy(artifact: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(artifact, tmp_path / "artifact"))


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def _write(folder: Path, data: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _resign(folder: Path, variant: str) -> None:
    """Record the graph's current sha256 and size in the manifest, as an attacker (or a careless tool) would."""
    data = _manifest(folder)
    graph = (folder / data["variants"][variant]["file"]).read_bytes()
    data["variants"][variant].update(sha256=hashlib.sha256(graph).hexdigest(), size_bytes=len(graph))
    _write(folder, data)


def test_a_key_given_twice_is_refused_and_named(artifact, tmp_path):
    folder = _copy(artifact, tmp_path)
    text = (folder / "manifest.json").read_text(encoding="utf-8")
    entry = json.dumps(_manifest(folder)["variants"]["int8-static"])
    # three "int8-static" entries: Python's json would silently keep the last one
    (folder / "manifest.json").write_text(
        text.replace('"variants": {', f'"variants": {{"int8-static": {entry}, "int8-static": {entry}, ', 1),
        encoding="utf-8")
    with pytest.raises(ManifestError, match="'int8-static' appears twice"):
        kolite.load_manifest(folder)
    (folder / "manifest.json").write_text(text.replace('"task":', '"task": "token-classification", "task":', 1),
                                          encoding="utf-8")
    with pytest.raises(ManifestError, match="'task' appears twice"):
        kolite.load(folder)


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("max_length", 10**9, "max_length 1000000000 is outside"),
        ("max_length", 10**30, "max_length 1000000000000000000000000000000 is outside"),
        ("max_length", "512", "max_length must be an integer"),
        ("max_length", 512.0, "max_length must be an integer"),
        ("max_length", 4, "max_length 4 is outside"),
        ("pad_token_id", -1, "pad_token_id -1 is outside"),
        ("pad_token_id", 10**30, "pad_token_id .* is outside"),
        ("max_positions", 10**30, "max_positions .* is outside"),
        ("max_positions", 128, "max_length 512 is over the graph's 128 positions"),
        ("size_bytes", 10**30, "size_bytes .* is outside"),
        ("size_bytes", -5, "size_bytes -5 is outside"),
        ("rank", 10**30, "rank .* is outside"),
        ("sha256", 12, "sha256 must be 64 hex digits"),
    ],
)
def test_every_number_is_range_checked(artifact, tmp_path, where, value, message):
    folder = _copy(artifact, tmp_path)
    data = _manifest(folder)
    if where in ("size_bytes", "rank", "sha256"):
        data["variants"]["fp32"][where] = value
    else:
        data[where] = value
    _write(folder, data)
    with pytest.raises(ManifestError, match=message):
        kolite.load(folder, variant="fp32")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "9" * 5000])
def test_numbers_json_allows_but_no_manifest_holds_are_refused(artifact, tmp_path, literal):
    folder = _copy(artifact, tmp_path)
    text = (folder / "manifest.json").read_text(encoding="utf-8")
    (folder / "manifest.json").write_text(text.replace('"pad_token_id": 0', f'"pad_token_id": {literal}', 1),
                                          encoding="utf-8")
    assert text != (folder / "manifest.json").read_text(encoding="utf-8")
    with pytest.raises(ManifestError):
        kolite.load_manifest(folder)


def test_export_records_the_position_table_and_the_runtime_holds_max_length_to_it(artifact, tmp_path):
    manifest = kolite.load_manifest(artifact)
    rows = read_graph_facts(artifact / manifest.variants["fp32"].file).position_rows
    assert rows is not None and manifest.max_positions == rows and manifest.max_length <= rows
    folder = _copy(artifact, tmp_path)
    data = _manifest(folder)
    # A 1.1 manifest (no max_positions) with a max_length over the table: read from the graph, refused at load
    # (before, it loaded and every text over the table died inside onnxruntime).
    data.update(schema_version="1.1", max_length=rows * 2)
    del data["max_positions"]
    _write(folder, data)
    assert kolite.load_manifest(folder).max_positions is None
    with pytest.raises(ManifestError, match=f"max_length {rows * 2} is over the {rows} positions"):
        kolite.load(folder, variant="fp32")
    data["max_length"] = rows  # the whole table is usable
    _write(folder, data)
    assert kolite.load(folder, variant="fp32").predict("정말 재미있어요 " * rows)
    data.update(schema_version="1.2", max_positions=rows * 2, max_length=rows)  # recorded, but not this graph's
    _write(folder, data)
    with pytest.raises(ManifestError, match="does not belong to this graph"):
        kolite.load(folder, variant="fp32")


def _labels_mismatch(folder: Path) -> None:
    data = _manifest(folder)
    data["labels"] = [*data["labels"], "extra"]
    _write(folder, data)


def _external_data_outside(folder: Path) -> None:
    import onnx
    from onnx import numpy_helper

    graph_path = folder / "model.fp32.onnx"
    model = onnx.load(graph_path)
    table = next(t for t in model.graph.initializer if t.name.endswith("position_embeddings.weight"))
    array = numpy_helper.to_array(table)
    (folder.parent / "outside.bin").write_bytes(array.tobytes())
    table.ClearField("raw_data")
    table.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../outside.bin"), ("offset", "0"), ("length", str(array.nbytes))):
        entry = table.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model, graph_path)
    _resign(folder, "fp32")


def _truncated_graph(folder: Path) -> None:
    graph_path = folder / "model.fp32.onnx"
    graph_path.write_bytes(graph_path.read_bytes()[: graph_path.stat().st_size // 2])
    _resign(folder, "fp32")


def _graph_max_length(folder: Path) -> None:
    data = _manifest(folder)
    data["max_length"] = data["max_positions"] * 2
    del data["max_positions"]
    _write(folder, data)


def _absurd_max_length(folder: Path) -> None:
    data = _manifest(folder)
    data["max_length"] = 10**30
    _write(folder, data)


@pytest.mark.parametrize(
    ("breakage", "said"),
    [
        (_labels_mismatch, "the manifest does not belong to this graph"),
        (_external_data_outside, "external data"),  # refused by open_session: only self-contained graphs run
        (_truncated_graph, "model.fp32.onnx"),
        (_graph_max_length, "is over the"),
        (_absurd_max_length, "is outside"),
    ],
    ids=lambda value: getattr(value, "__name__", "")[1:] if callable(value) else "",
)
def test_info_verify_fails_on_artifacts_that_cannot_load(artifact, tmp_path, capsys, breakage, said):
    folder = _copy(artifact, tmp_path)
    breakage(folder)
    assert kolite_main(["info", str(folder), "--verify"]) != 0
    captured = capsys.readouterr()
    assert said in captured.err, captured.err


def test_info_verify_loads_and_runs_every_passed_variant(artifact, capsys):
    assert kolite_main(["info", str(artifact), "--verify"]) == 0
    out = capsys.readouterr().out
    for name in kolite.load_manifest(artifact).passed_variants:
        assert f"loads and runs: {name}" in out


def test_a_graph_keeping_external_data_outside_its_folder_is_refused_by_load(artifact, tmp_path, monkeypatch):
    folder = _copy(artifact, tmp_path)
    _external_data_outside(folder)
    assert read_graph_facts(folder / "model.fp32.onnx").external_files == ("../outside.bin",)
    # onnxruntime refuses it too; kolite's own check does not depend on that
    monkeypatch.setattr("kolite.api.OnnxModel", _NoSession)
    with pytest.raises(IntegrityError, match="outside the artifact folder"):
        kolite.load(folder, variant="fp32")


class _NoSession:
    def __init__(self, *args: object, **kwargs: object) -> None:
        from kolite.providers import cpu_device

        self.device = cpu_device()

    def close(self) -> None:
        pass


def test_graph_facts_read_a_file_or_its_bytes_and_refuse_what_is_not_a_graph(artifact, tmp_path):
    graph = artifact / "model.int8.onnx"
    assert read_graph_facts(graph) == read_graph_facts(graph.read_bytes())
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(graph.read_bytes()[: graph.stat().st_size // 3])
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for broken in (truncated, empty, b"", b"\xff" * 64):
        with pytest.raises(ValueError, match="graph"):
            read_graph_facts(broken)


@pytest.mark.torch  # the expected count is read with the onnx package, which the torch-free venv does not have
@pytest.mark.parametrize("variant", ["fp32", "int8-static"])
def test_graph_facts_count_the_weights_that_matrix_multiplies_read(artifact, variant):
    import onnx

    manifest = load_manifest(artifact)
    graph = onnx.load(str(artifact / manifest.variants[variant].file))
    sizes = {t.name: int(np.prod(t.dims)) for t in graph.graph.initializer if len(t.dims) >= 2}
    multiplies = ("MatMul", "Gemm", "Attention")  # float and quantized forms (MatMulInteger, QAttention, ...)
    fed = {name for node in graph.graph.node if any(op in node.op_type for op in multiplies) for name in node.input}
    embeddings = [name for name in sizes if "embeddings" in name]
    assert embeddings and not set(embeddings) & fed  # looked-up tables are there and are not counted
    expected = sum(sizes[name] for name in fed if name in sizes)
    assert expected > 0 and read_graph_facts(artifact / manifest.variants[variant].file).dense_weights == expected
