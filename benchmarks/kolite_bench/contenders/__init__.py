"""Contender registry: name → factory. Modules import their heavy stacks only when a contender loads."""

from __future__ import annotations

from collections.abc import Callable

from kolite_bench.contenders.base import Contender, ContenderSpec

__all__ = ["Contender", "ContenderSpec", "build_contender", "contender_kind"]


def _torch(spec: ContenderSpec) -> Contender:
    from kolite_bench.contenders.torch_original import TorchContender

    return TorchContender(spec)


def _pipeline(spec: ContenderSpec) -> Contender:
    from kolite_bench.contenders.pipeline import PipelineContender

    return PipelineContender(spec)


def _optimum(spec: ContenderSpec) -> Contender:
    from kolite_bench.contenders.optimum_peer import OptimumContender

    return OptimumContender(spec)


def _openvino(spec: ContenderSpec) -> Contender:
    from kolite_bench.contenders.openvino_peer import OpenVINOContender

    return OpenVINOContender(spec)


def _kolite(spec: ContenderSpec) -> Contender:
    from kolite_bench.contenders.kolite_runtime import KoliteContender

    return KoliteContender(spec)


_FACTORIES: dict[str, Callable[[ContenderSpec], Contender]] = {
    "torch": _torch,
    "pipeline": _pipeline,
    "optimum": _optimum,
    "openvino": _openvino,
    "kolite": _kolite,
}


def contender_kind(name: str) -> str:
    """``kolite-int8`` → ``kolite``, ``torch-longest`` → ``torch``, ``openvino-int8-latency`` → ``openvino``."""
    return name.split("-", 1)[0]


def build_contender(spec: ContenderSpec) -> Contender:
    kind = contender_kind(spec.name)
    if kind not in _FACTORIES:
        raise ValueError(f"unknown contender {spec.name!r}; kinds: {sorted(_FACTORIES)}")
    return _FACTORIES[kind](spec)
