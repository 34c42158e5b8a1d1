"""Error ranking (``kolite_export.error_ranking``): the quantized nodes kept in float to shrink the int8-vs-float
logit tail that the fidelity guard's τ reads.

The search logic runs on a stand-in splicer whose "graphs" are sets of float nodes (fast, no torch); the real path
(spliced int8-static graphs of the tiny NER stand-in, KLUE-NER sentences) checks that each step's recorded error
is that graph's error and that the steps lower it.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest


def test_logit_error_is_half_the_guards_pooled_tau_on_the_same_rows():
    from kolite_export.error_ranking import logit_error
    from kolite_export.guard_threshold import GUARD_QUANTILE, GUARD_SAFETY

    rng = np.random.default_rng(0)
    reference = [rng.normal(size=(n, 5)) for n in (3, 7, 11)]
    outputs = [r + rng.normal(scale=0.01, size=r.shape) for r in reference]
    deltas = np.concatenate([np.abs(o - r).ravel() for o, r in zip(outputs, reference, strict=True)])
    expected = max(GUARD_SAFETY * np.percentile(deltas, GUARD_QUANTILE), deltas.max())
    assert logit_error(outputs, reference) == pytest.approx(expected)
    assert logit_error(reference, reference) == 0.0


class _MaxSplicer:
    """A splicer whose graph is the set of its quantized nodes; its error is the largest error of a quantized node,
    as the tail of |Δlogit| is when one node's rounding dominates it. ``unsplicable`` cannot go back to float."""

    def __init__(self, nodes, unsplicable: str = "") -> None:
        self.nodes, self.unsplicable = set(nodes), unsplicable
        self.graphs = 0

    def with_float(self, names):
        if self.unsplicable in names:
            return None
        self.graphs += 1
        return "|".join(sorted(self.nodes - set(names))).encode()

    def quantized_alone(self, name):
        self.graphs += 1
        return name.encode()


def _error_of(contributions):
    def error(graph: bytes) -> float:
        quantized = set(graph.decode().split("|"))
        return max((c for n, c in contributions.items() if n in quantized), default=0.0)

    return error


def test_greedy_finds_the_node_the_first_one_masked():
    """Back in float alone, b gains nothing (a still sets the max), so a leave-one-out ranking would put it last;
    its own tail (quantized alone) puts it on the shortlist, and it goes second."""
    from kolite_export.error_ranking import greedy_float_nodes

    contributions = {"c": 0.1, "a": 1.0, "d": 0.05, "b": 0.9}
    splicer = _MaxSplicer(contributions)
    base, steps = greedy_float_nodes(splicer, list(contributions), _error_of(contributions), 3, shortlist=2)
    assert base == 1.0
    assert [s.node for s in steps] == ["a", "b", "c"]
    assert [s.error for s in steps] == [0.9, 0.1, 0.05]
    assert steps[0].graphs_scored == 1 + len(contributions) + 2  # the graph itself, each alone, the shortlist
    assert splicer.graphs == sum(s.graphs_scored for s in steps)


def test_greedy_stops_when_flat_unless_asked_for_every_point_and_skips_what_cannot_splice():
    from kolite_export.error_ranking import greedy_float_nodes

    contributions = {"a": 1.0, "b": 0.0, "c": 0.0, "x": 0.5}
    _, steps = greedy_float_nodes(_MaxSplicer(contributions, "x"), list(contributions), _error_of(contributions), 4)
    assert [s.node for s in steps] == ["a"]  # x cannot go back to float; nothing else lowers the error
    _, steps = greedy_float_nodes(_MaxSplicer(contributions, "x"), list(contributions), _error_of(contributions), 4,
                                  stop_when_flat=False)
    assert [s.node for s in steps] == ["a", "b", "c"]  # ties in graph order; x never


@pytest.mark.torch
def test_greedy_steps_lower_the_error_of_real_spliced_ner_graphs(standin_dir, shared_data, tmp_path):
    from kolite_export.cpu import detect_cpu
    from kolite_export.error_ranking import greedy_float_nodes, logit_error
    from kolite_export.float_swap import GraphSplicer
    from kolite_export.layouts import load_checkpoint
    from kolite_export.onnx_export import export_fp32
    from kolite_export.trial import cpu_session
    from kolite_export.validation import encode_set, onnx_outputs
    from kolite_export.validation_data import load_validation_set
    from kolite_export.variants import VARIANTS, BuildContext

    checkpoint = load_checkpoint(standin_dir("004"))
    texts = load_validation_set("klue-ner", 96, shared_data).texts
    ctx = BuildContext(checkpoint, tmp_path, detect_cpu(), calibration_texts=texts[:64])
    export_fp32(checkpoint, ctx.fp32_path)
    spec = VARIANTS["int8-static"]
    scope = spec.quantized_scope(ctx)
    spec.build(ctx, tmp_path / "int8.onnx")
    splicer = GraphSplicer.open(tmp_path / "int8.onnx", scope.graph, scope.op_types)
    encoded = encode_set(checkpoint, texts[64:])  # not calibration rows

    def outputs(graph):
        return onnx_outputs(cpu_session(graph), checkpoint, encoded)

    reference = outputs(scope.graph)

    def error_of(graph):
        return logit_error(outputs(graph), reference)

    nodes = list(scope.nodes())
    base, steps = greedy_float_nodes(splicer, nodes, error_of, 3)
    assert base == pytest.approx(error_of(tmp_path / "int8.onnx"), rel=1e-6) and base > 0
    assert steps and len({s.node for s in steps}) == len(steps) and {s.node for s in steps} <= set(nodes)
    errors = [base, *(s.error for s in steps)]
    assert all(later < earlier for earlier, later in itertools.pairwise(errors))
    for i, step in enumerate(steps):  # each recorded error is that prefix's spliced graph's error
        assert step.error == pytest.approx(error_of(splicer.with_float([s.node for s in steps[: i + 1]])), rel=1e-6)
    assert error_of(splicer.with_float(nodes)) < 1e-4  # every node in float: the float graph


@pytest.mark.torch
def test_export_keeps_error_float_nodes_within_the_tasks_budget_and_records_them(tiny_artifact):
    """NER's int8-static ships with its error-float nodes in float (within its weight budget, with a lower logit
    error on the ranking rows); a classifier's with none; both record the pass, so older artifacts are rebuilt."""
    import onnx
    from kolite.manifest import load_manifest
    from kolite_export.cpu import detect_cpu
    from kolite_export.recipes import ERROR_FLOAT_BUDGET, ERROR_FLOAT_PASS
    from kolite_export.variants import VARIANTS

    spec = VARIANTS["int8-static"]
    for seed in ("000", "004"):
        manifest = load_manifest(tiny_artifact(seed))
        recipe = manifest.variants["int8-static"].recipe
        assert spec.current_recipe is not None
        assert recipe["error_float_pass"] == ERROR_FLOAT_PASS == spec.current_recipe(detect_cpu())["error_float_pass"]
        nodes = recipe["error_float_nodes"]
        budget = ERROR_FLOAT_BUDGET.get(manifest.task, 0.0)
        if not budget:
            assert nodes == [] and "error_float" not in recipe
            continue
        if nodes:  # none when no node small enough for the budget lowers the tiny model's error
            record = recipe["error_float"]
            assert record["weight_budget"] == budget and 0 < record["float_weight_fraction"] <= budget
            assert record["logit_error_after"] < record["logit_error_before"]
            assert set(nodes) <= set(recipe["nodes_to_exclude"])
            graph = onnx.load(str(tiny_artifact(seed) / manifest.variants["int8-static"].file))
            ops = {node.name: node.op_type for node in graph.graph.node}
            assert all(ops.get(name) in ("MatMul", "Attention") for name in nodes)  # still float, by name


@pytest.mark.torch
def test_export_with_room_in_the_budget_ships_the_chosen_nodes_in_float(
    standin_dir, shared_data, tmp_path, monkeypatch
):
    """The tiny NER stand-in's nodes are each too large a share for NER's budget; with the whole model as budget
    the search's nodes ship in float, within it, and lower the error it measured."""
    from dataclasses import replace

    import onnx
    from kolite.manifest import load_manifest
    from kolite_export.exporter import ExportOptions, export
    from kolite_export.variants import VARIANTS

    budget = 1.0
    monkeypatch.setitem(
        VARIANTS, "int8-static", replace(VARIANTS["int8-static"], error_float_budget={"token-classification": budget})
    )
    options = ExportOptions(variants=("int8-static",), validation_size=48, shared=str(shared_data), force=True)
    assert export(standin_dir("004"), tmp_path / "art", options).ok
    variant = load_manifest(tmp_path / "art").variants["int8-static"]
    recipe = variant.recipe
    nodes, record = recipe["error_float_nodes"], recipe["error_float"]
    assert nodes and recipe["nodes_to_exclude"] == nodes
    assert 0 < record["float_weight_fraction"] <= budget and record["logit_error_after"] < record["logit_error_before"]
    ops = {node.name: node.op_type for node in onnx.load(str(tmp_path / "art" / variant.file)).graph.node}
    assert all(ops.get(name) in ("MatMul", "Attention") for name in nodes)  # still float, by name


def test_greedy_spends_at_most_its_budget():
    from kolite_export.error_ranking import greedy_float_nodes

    contributions = {"a": 1.0, "b": 0.9, "c": 0.1}
    costs = {"a": 0.3, "b": 0.3, "c": 0.1}
    _, steps = greedy_float_nodes(_MaxSplicer(contributions), list(contributions), _error_of(contributions), 3,
                                  costs=costs, budget=0.5, stop_when_flat=False)
    assert [s.node for s in steps] == ["a", "c"]  # after a, b no longer fits (0.6 > 0.5); c does
